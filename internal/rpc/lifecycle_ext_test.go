package rpc_test

import (
	"context"
	"net/http"
	"net/http/httptest"
	"strconv"
	"testing"
	"time"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	pb "github.com/httpgateway/httpgateway/gen/httpgateway/v1"
	"github.com/httpgateway/httpgateway/internal/rpc"
	"github.com/httpgateway/httpgateway/internal/testutil"
)

// endlessHandler streams a body until the client goes away; /ok answers.
func endlessHandler(w http.ResponseWriter, r *http.Request) {
	if r.URL.Path == "/ok" {
		_, _ = w.Write([]byte("ok"))
		return
	}
	chunk := make([]byte, 4096)
	for r.Context().Err() == nil {
		if _, err := w.Write(chunk); err != nil {
			return
		}
		w.(http.Flusher).Flush()
	}
}

// TestCancelMidBodyFreesSocket: cancelling an Exchange mid-body acts as an
// AbortSignal and frees the agent's only socket for the next request.
func TestCancelMidBodyFreesSocket(t *testing.T) {
	testutil.CheckLeaks(t)
	up := httptest.NewServer(http.HandlerFunc(endlessHandler))
	t.Cleanup(up.Close)
	g := startGateway(t, rpc.Options{})
	ctx := testCtx(t)
	if _, err := g.agents.CreateAgent(ctx, &pb.CreateAgentRequest{Name: "one", Options: &pb.AgentOptions{KeepAlive: ptr(true), MaxSockets: 1}}); err != nil {
		t.Fatal(err)
	}

	xctx, cancel := context.WithCancel(ctx)
	st, err := g.req.Exchange(xctx)
	if err != nil {
		t.Fatal(err)
	}
	if err := st.Send(&pb.ExchangeRequest{Op: &pb.ExchangeRequest_Start{Start: &pb.RequestOptions{Url: up.URL + "/endless", Agent: "one"}}}); err != nil {
		t.Fatal(err)
	}
	if err := st.Send(&pb.ExchangeRequest{Op: &pb.ExchangeRequest_End{End: &pb.EndOp{}}}); err != nil {
		t.Fatal(err)
	}
	var id string
	for datas := 0; datas < 3; {
		m, err := st.Recv()
		if err != nil {
			t.Fatal(err)
		}
		if c := m.GetCreated(); c != nil {
			id = c.GetRequestId()
		}
		if m.GetEvent().GetData() != nil {
			datas++
		}
	}
	r, err := g.agents.ListSockets(ctx, &pb.ListSocketsRequest{Agent: "one"})
	if err != nil || len(r.GetNames()) != 1 || len(r.GetNames()[0].GetSockets()) != 1 {
		t.Fatalf("mid-body sockets: %v %v", r, err)
	}
	cancel()
	for {
		_, err := st.Recv()
		if err == nil {
			continue // messages already received before the cancel
		}
		if status.Code(err) != codes.Canceled {
			t.Fatalf("after cancel: %v", err)
		}
		break
	}

	// The agent's one socket is free again: a request through it succeeds.
	f, err := g.req.Fetch(ctx, &pb.FetchRequest{Url: up.URL + "/ok", Agent: "one"})
	if err != nil || string(f.GetBody()) != "ok" || f.GetReusedSocket() {
		t.Fatalf("next request: %v %v", f, err)
	}
	// The cancelled request closed with the AbortSignal's events.
	gr, err := g.req.Get(ctx, &pb.GetRequest{RequestId: id})
	if err == nil && (!gr.GetRequest().GetClosed() || !gr.GetRequest().GetDestroyed()) {
		t.Fatalf("cancelled request: %v", gr)
	}
}

// TestIdleReaper: a request nobody drives or watches is destroyed after the
// idle time and its handle freed; Get does not count as activity.
func TestIdleReaper(t *testing.T) {
	testutil.CheckLeaks(t)
	up := httptest.NewServer(http.HandlerFunc(endlessHandler))
	t.Cleanup(up.Close)
	g := startGateway(t, rpc.Options{RequestIdleTimeout: 100 * time.Millisecond})
	ctx := testCtx(t)
	cr := request(t, g, &pb.RequestOptions{Url: up.URL + "/endless"})
	end(t, g, cr.GetRequestId(), nil) // the body streams until the event buffer is full
	deadline := time.Now().Add(10 * time.Second)
	for {
		_, err := g.req.Get(ctx, &pb.GetRequest{RequestId: cr.GetRequestId()})
		if status.Code(err) == codes.NotFound {
			break
		}
		if err != nil || time.Now().After(deadline) {
			t.Fatalf("handle still there after the idle time: %v", err)
		}
		time.Sleep(10 * time.Millisecond) // polling a condition with a bound
	}
	if n := g.svc.LiveRequests(); n != 0 {
		t.Fatalf("%d live requests", n)
	}
}

// TestLiveRequestCap: past MaxLiveRequests, Request answers
// RESOURCE_EXHAUSTED; a finished request gives its slot back.
func TestLiveRequestCap(t *testing.T) {
	testutil.CheckLeaks(t)
	g := startGateway(t, rpc.Options{MaxLiveRequests: 2, FinishedLinger: time.Hour})
	o := &pb.RequestOptions{Url: "http://127.0.0.1:" + strconv.Itoa(closedPort(t)) + "/"}
	a := request(t, g, o)
	b := request(t, g, o)
	_, err := g.req.Request(testCtx(t), &pb.RequestRequest{Options: o})
	wantStatus(t, err, codes.ResourceExhausted, "ERR_GATEWAY_TOO_MANY_REQUESTS")
	_, err = g.req.Fetch(testCtx(t), &pb.FetchRequest{Url: o.GetUrl()})
	wantStatus(t, err, codes.ResourceExhausted, "ERR_GATEWAY_TOO_MANY_REQUESTS")
	// a finishes (ECONNREFUSED) and its events are delivered: at the cap
	// its lingering handle makes room.
	subscribe(t, g, a.GetRequestId(), 0).rest()
	c := request(t, g, o)
	subscribe(t, g, b.GetRequestId(), 0).rest()
	subscribe(t, g, c.GetRequestId(), 0).rest()
	// FinishedLinger is long here: free the rest by evicting at the cap.
	for range 2 {
		d := request(t, g, o)
		subscribe(t, g, d.GetRequestId(), 0).rest()
	}
	g.svc.Close() // frees the lingering handles for the cleanup check
}
