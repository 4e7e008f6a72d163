package main

import (
	"bytes"
	"context"
	"errors"
	"io"
	"math/rand/v2"
	"net/http"
	"net/http/httptest"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/mem"

	pb "github.com/httpgateway/httpgateway/gen/httpgateway/v1"
	"github.com/httpgateway/httpgateway/internal/testutil"
)

// TestServeBodiesIntact: bodies keep every byte through the served gateway
// (whose gRPC buffers are pooled and not cleared: bufpool), both ways, by
// Fetch, by Exchange and by the handle RPCs (Write), over rounds of different random content and
// sizes, so that a buffer reused from an earlier round could only go
// unnoticed if it were filled completely.
func TestServeBodiesIntact(t *testing.T) {
	testutil.CheckLeaks(t)
	// The server's reads go through serverPool: count them.
	counted := &countingPool{BufferPool: serverPool}
	serverPool = counted
	t.Cleanup(func() { serverPool = counted.BufferPool })
	up := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, err := io.ReadAll(r.Body) // all of it first: net/http's HTTP/1 handlers are not full duplex
		if err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		_, _ = w.Write(b)
	}))
	t.Cleanup(up.Close)
	addr := startServe(t, "--egress-allow", "127.0.0.1/32")
	cc, err := grpc.NewClient(addr, grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cc.Close() })
	client := pb.NewClientRequestServiceClient(cc)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()

	rng := rand.New(rand.NewPCG(1, 2))
	for round := range 4 {
		body := make([]byte, 1<<20+rng.IntN(2<<20))
		for i := range body {
			body[i] = byte(rng.Uint32())
		}
		// Fetch bodies and Write and Exchange chunks are lent from gRPC's
		// buffers to the requests (no copy): three calls of each at once,
		// so that a buffer given back too early would be refilled by
		// another call's message.
		var wg sync.WaitGroup
		for i := range 3 {
			for _, via := range []struct {
				name string
				echo func(context.Context, *testing.T, pb.ClientRequestServiceClient, string, []byte, *rand.Rand) []byte
			}{{"Fetch", fetchEcho}, {"Exchange", exchangeEcho}, {"Write", writeEcho}} {
				b := bytes.Clone(body[i*1000:])
				seed := rng.Uint64()
				wg.Go(func() {
					if got := via.echo(ctx, t, client, up.URL+"/echo", b, rand.New(rand.NewPCG(seed, 0))); !bytes.Equal(got, b) {
						t.Errorf("round %d: %s stream %d echoed %d bytes, not the %d sent", round, via.name, i, len(got), len(b))
					}
				})
			}
		}
		wg.Wait()
		if t.Failed() {
			t.FailNow()
		}
	}
	if counted.gets.Load() == 0 {
		t.Error("the server took no buffer from serverPool")
	}
}

// countingPool counts the buffers taken from a pool.
type countingPool struct {
	mem.BufferPool
	gets atomic.Int64
}

func (p *countingPool) Get(n int) *[]byte {
	p.gets.Add(1)
	return p.BufferPool.Get(n)
}

// fetchEcho sends body by Fetch and returns the response body. It reports
// failures with t.Errorf: it runs on goroutines of its own.
func fetchEcho(ctx context.Context, t *testing.T, client pb.ClientRequestServiceClient, url string, body []byte, _ *rand.Rand) []byte {
	t.Helper()
	res, err := client.Fetch(ctx, &pb.FetchRequest{Url: url, Method: "PUT", Body: body})
	if err != nil {
		t.Errorf("Fetch: %v", err)
		return nil
	}
	return res.GetBody()
}

// exchangeEcho sends body by Exchange in writes of random sizes and
// returns the response body from its data events. It reports failures
// with t.Errorf: it runs on goroutines of its own.
func exchangeEcho(ctx context.Context, t *testing.T, client pb.ClientRequestServiceClient, url string, body []byte, rng *rand.Rand) []byte {
	t.Helper()
	st, err := client.Exchange(ctx)
	if err != nil {
		t.Errorf("Exchange: %v", err)
		return nil
	}
	send := func(r *pb.ExchangeRequest) bool {
		err := st.Send(r)
		return err == nil // or Recv says why
	}
	ok := send(&pb.ExchangeRequest{Op: &pb.ExchangeRequest_Start{Start: &pb.RequestOptions{Url: url, Method: "PUT"}}})
	for rest := body; ok && len(rest) > 0; {
		n := min(len(rest), 1+rng.IntN(300<<10))
		ok = send(&pb.ExchangeRequest{Op: &pb.ExchangeRequest_Write{Write: rest[:n]}})
		rest = rest[n:]
	}
	if ok && send(&pb.ExchangeRequest{Op: &pb.ExchangeRequest_End{End: &pb.EndOp{}}}) {
		if err := st.CloseSend(); err != nil {
			t.Errorf("CloseSend: %v", err)
			return nil
		}
	}
	return responseBody(t, "Exchange", st.Recv)
}

// writeEcho sends body by the handle RPCs (Request, Events, one Write
// stream of chunks of random sizes, the last with end) and returns the
// response body from the data events. It reports failures with t.Errorf:
// it runs on goroutines of its own.
func writeEcho(ctx context.Context, t *testing.T, client pb.ClientRequestServiceClient, url string, body []byte, rng *rand.Rand) []byte {
	t.Helper()
	created, err := client.Request(ctx, &pb.RequestRequest{Options: &pb.RequestOptions{Url: url, Method: "PUT"}})
	if err != nil {
		t.Errorf("Request: %v", err)
		return nil
	}
	id := created.GetRequest().GetRequestId()
	events, err := client.Events(ctx, &pb.EventsRequest{RequestId: id})
	if err != nil {
		t.Errorf("Events: %v", err)
		return nil
	}
	ws, err := client.Write(ctx)
	if err != nil {
		t.Errorf("Write: %v", err)
		return nil
	}
	for rest := body; len(rest) > 0; {
		n := min(len(rest), 1+rng.IntN(300<<10))
		if err := ws.Send(&pb.WriteRequest{RequestId: id, Chunk: rest[:n], End: n == len(rest)}); err != nil {
			break // CloseAndRecv says why
		}
		rest = rest[n:]
	}
	if res, err := ws.CloseAndRecv(); err != nil || !res.GetEnded() {
		t.Errorf("Write stream: %v (ended %v)", err, res.GetEnded())
		return nil
	}
	return responseBody(t, "Events", events.Recv)
}

// responseBody gathers the response body from the data events a stream
// (Exchange or Events) receives until it ends; nil after a failure, which
// it reports with t.Errorf.
func responseBody[M interface{ GetEvent() *pb.Event }](t *testing.T, what string, recv func() (M, error)) []byte {
	t.Helper()
	var got []byte
	for {
		m, err := recv()
		if errors.Is(err, io.EOF) {
			return got
		}
		if err != nil {
			t.Errorf("%s recv: %v", what, err)
			return nil
		}
		if e := m.GetEvent(); e.GetError() != nil {
			t.Errorf("%s error event: %v", what, e.GetError())
			return nil
		} else if d := e.GetData(); d != nil {
			got = append(got, d.GetChunk()...)
		}
	}
}
