"""An independent gRPC client of the gateway, in Python.

Usage: pyclient.py STUBS_DIR GATEWAY_ADDR UPSTREAM_URL
Does a Fetch (POST with a body) and an Exchange (POST streamed in two
chunks), and prints one JSON object with what it saw.
"""
import json
import sys

sys.path.insert(0, sys.argv[1])
import grpc  # noqa: E402
from httpgateway.v1 import client_request_pb2 as cr  # noqa: E402
from httpgateway.v1 import client_request_pb2_grpc as crg  # noqa: E402
from httpgateway.v1 import common_pb2 as common  # noqa: E402

addr, url = sys.argv[2], sys.argv[3]
out = {}
with grpc.insecure_channel(addr) as ch:
    stub = crg.ClientRequestServiceStub(ch)

    res = stub.Fetch(cr.FetchRequest(url=url, method="POST", body=b"from python",
                                     headers=[common.Header(name="X-Client", value="python")]), timeout=20)
    out["fetch_status"] = res.status_code
    out["fetch_body"] = res.body.decode()

    def ops():
        yield cr.ExchangeRequest(start=cr.RequestOptions(url=url, method="POST"))
        yield cr.ExchangeRequest(write=b"streamed ")
        yield cr.ExchangeRequest(end=cr.EndOp(data=b"in two"))

    events, body = [], b""
    for msg in stub.Exchange(ops(), timeout=20):
        kind = msg.WhichOneof("kind")
        if kind == "event":
            ev = msg.event
            name = ev.WhichOneof("kind")
            events.append(name)
            if name == "data":
                body += ev.data.chunk
        elif kind == "op_refused":
            events.append("op_refused:" + msg.op_refused.error.code)
    out["exchange_events"] = events
    out["exchange_body"] = body.decode()
print(json.dumps(out))
