package rpc_test

import (
	"bufio"
	"errors"
	"io"
	"net"
	"strconv"
	"testing"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"

	pb "github.com/httpgateway/httpgateway/gen/httpgateway/v1"
	"github.com/httpgateway/httpgateway/internal/rpc"
	"github.com/httpgateway/httpgateway/internal/testutil"
)

// echoAfter answers the request head with resp (plus greeting), then
// echoes every byte until the peer half-closes, then closes.
func echoAfter(resp, greeting string) func(net.Conn) {
	return func(c net.Conn) {
		br := bufio.NewReader(c)
		if _, _, err := testutil.ReadRequest(br); err != nil {
			return
		}
		if _, err := io.WriteString(c, resp+greeting); err != nil {
			return
		}
		_, _ = io.Copy(c, br)
	}
}

// tunnelRoundTrip sends msg over a Tunnel of request id, half-closes, and
// returns everything read until the peer's end, which must come.
func tunnelRoundTrip(t *testing.T, g *gateway, id, msg string) string {
	t.Helper()
	st, err := g.req.Tunnel(testCtx(t))
	if err != nil {
		t.Fatal(err)
	}
	for _, m := range []*pb.TunnelRequest{
		{Frame: &pb.TunnelRequest_RequestId{RequestId: id}},
		{Frame: &pb.TunnelRequest_Data{Data: []byte(msg)}},
	} {
		if err := st.Send(m); err != nil {
			t.Fatal(err)
		}
	}
	var got []byte
	var ended bool
	for len(got) < len(msg) {
		r, err := st.Recv()
		if err != nil {
			t.Fatalf("tunnel read after %q: %v", got, err)
		}
		got = append(got, r.GetData()...)
	}
	// The caller's end shuts the socket's write side; the echo server then
	// ends, and its EOF comes back as `end`.
	if err := st.Send(&pb.TunnelRequest{Frame: &pb.TunnelRequest_End{End: &pb.TunnelEnd{}}}); err != nil {
		t.Fatal(err)
	}
	for {
		r, err := st.Recv()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		got = append(got, r.GetData()...)
		ended = ended || r.GetEnd() != nil
	}
	if !ended {
		t.Fatal("no end frame before the stream ended")
	}
	return string(got)
}

func TestTunnelUpgrade(t *testing.T) {
	testutil.CheckLeaks(t)
	up := testutil.NewUpstream(t, echoAfter("HTTP/1.1 101 Switching Protocols\r\nUpgrade: echo\r\nConnection: Upgrade\r\n\r\n", "hi:"))
	g := startGateway(t, rpc.Options{})
	cr := request(t, g, &pb.RequestOptions{
		Url:     "http://127.0.0.1:" + strconv.Itoa(up.Port) + "/ws",
		Headers: []*pb.Header{{Name: "Connection", Value: "Upgrade"}, {Name: "Upgrade", Value: "echo"}},
	})
	id := cr.GetRequestId()
	// Tunnel before the upgrade: refused.
	st, err := g.req.Tunnel(testCtx(t))
	if err != nil {
		t.Fatal(err)
	}
	_ = st.Send(&pb.TunnelRequest{Frame: &pb.TunnelRequest_RequestId{RequestId: id}})
	_, err = st.Recv()
	wantStatus(t, err, codes.FailedPrecondition, "ERR_GATEWAY_NO_TUNNEL")

	s := subscribe(t, g, id, 0)
	end(t, g, id, nil)
	evs := s.rest()
	if got, want := names(evs), "req:socket req:finish req:upgrade req:close"; got != want {
		t.Fatalf("events\n got: %s\nwant: %s", got, want)
	}
	upg := evs[2].GetUpgrade()
	if upg.GetHead().GetStatusCode() != 101 {
		t.Fatalf("upgrade head: %v", upg)
	}
	got := string(upg.GetHeadBytes()) + tunnelRoundTrip(t, g, id, "ping-pong")
	if got != "hi:ping-pong" {
		t.Fatalf("tunnel carried %q", got)
	}
}

func TestTunnelConnect(t *testing.T) {
	testutil.CheckLeaks(t)
	up := testutil.NewUpstream(t, echoAfter("HTTP/1.1 200 Connection Established\r\n\r\n", ""))
	g := startGateway(t, rpc.Options{})
	// CONNECT through an Exchange, then the tunnel on its request id.
	x, err := g.req.Exchange(testCtx(t))
	if err != nil {
		t.Fatal(err)
	}
	for _, m := range []*pb.ExchangeRequest{
		{Op: &pb.ExchangeRequest_Start{Start: &pb.RequestOptions{Method: "CONNECT", Host: "127.0.0.1", Port: int32(up.Port), Path: "example.test:443"}}},
		{Op: &pb.ExchangeRequest_End{End: &pb.EndOp{}}},
	} {
		if err := x.Send(m); err != nil {
			t.Fatal(err)
		}
	}
	id, evs := drainExchange(t, x)
	if got, want := names(evs), "req:socket req:finish req:connect req:close"; got != want {
		t.Fatalf("events\n got: %s\nwant: %s", got, want)
	}
	if got := tunnelRoundTrip(t, g, id, "through the tunnel"); got != "through the tunnel" {
		t.Fatalf("tunnel carried %q", got)
	}
}

// drainExchange reads an Exchange to its end.
func drainExchange(t *testing.T, x grpc.BidiStreamingClient[pb.ExchangeRequest, pb.ExchangeResponse]) (string, []*pb.Event) {
	t.Helper()
	var id string
	var evs []*pb.Event
	for {
		m, err := x.Recv()
		if errors.Is(err, io.EOF) {
			return id, evs
		}
		if err != nil {
			t.Fatalf("exchange after %s: %v", names(evs), err)
		}
		if c := m.GetCreated(); c != nil {
			id = c.GetRequestId()
		}
		if e := m.GetEvent(); e != nil {
			evs = append(evs, e)
		}
	}
}
