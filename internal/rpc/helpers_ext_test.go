package rpc_test

import (
	"bufio"
	"context"
	"errors"
	"io"
	"net"
	"net/netip"
	"strings"
	"testing"
	"time"

	"google.golang.org/genproto/googleapis/rpc/errdetails"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/status"

	pb "github.com/httpgateway/httpgateway/gen/httpgateway/v1"
	"github.com/httpgateway/httpgateway/internal/rpc"
	"github.com/httpgateway/httpgateway/internal/testutil"
)

// gateway is the rpc services on a real gRPC server on loopback, with a
// client connection to it.
type gateway struct {
	svc    *rpc.Service
	addr   string
	req    pb.ClientRequestServiceClient
	agents pb.AgentServiceClient
}

// startGateway starts the services on 127.0.0.1:0. At cleanup it checks
// that no request handle is left, then stops the server and closes the
// service. Call testutil.CheckLeaks before it.
func startGateway(t *testing.T, o rpc.Options, srvOpts ...grpc.ServerOption) *gateway {
	t.Helper()
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := grpc.NewServer(srvOpts...)
	if o.FinishedLinger == 0 {
		o.FinishedLinger = time.Millisecond // free finished handles at once
	}
	svc := rpc.New(o)
	svc.Register(srv)
	served := make(chan struct{})
	go func() { // ends when srv stops
		defer close(served)
		_ = srv.Serve(lis)
	}()
	cc, err := grpc.NewClient(lis.Addr().String(), grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	g := &gateway{svc: svc, addr: lis.Addr().String(), req: pb.NewClientRequestServiceClient(cc), agents: pb.NewAgentServiceClient(cc)}
	t.Cleanup(func() {
		// Every handle must be gone once the test's requests closed and
		// their events were delivered; handles free asynchronously only
		// by the reaper, so poll with a bound.
		deadline := time.Now().Add(5 * time.Second)
		for svc.LiveRequests() != 0 && time.Now().Before(deadline) {
			time.Sleep(5 * time.Millisecond)
		}
		if n := svc.LiveRequests(); n != 0 {
			t.Errorf("%d request handles left at the end of the test", n)
		}
		_ = cc.Close()
		srv.Stop()
		<-served
		svc.Close()
	})
	return g
}

func testCtx(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	t.Cleanup(cancel)
	return ctx
}

// evName renders an event as "req:socket" or "res:error(ECONNRESET)".
func evName(e *pb.Event) string {
	p := "req:"
	if e.GetTarget() == pb.EventTarget_EVENT_TARGET_RESPONSE {
		p = "res:"
	}
	var n string
	switch k := e.GetKind().(type) {
	case *pb.Event_Socket:
		n = "socket"
	case *pb.Event_Response:
		n = "response"
	case *pb.Event_Data:
		n = "data"
	case *pb.Event_End:
		n = "end"
	case *pb.Event_Close:
		n = "close"
	case *pb.Event_Error:
		n = "error(" + k.Error.GetError().GetCode() + ")"
	case *pb.Event_Abort:
		n = "abort"
	case *pb.Event_Aborted:
		n = "aborted"
	case *pb.Event_Timeout:
		n = "timeout"
	case *pb.Event_Information:
		n = "information"
	case *pb.Event_ContinueEvent:
		n = "continue"
	case *pb.Event_Upgrade:
		n = "upgrade"
	case *pb.Event_Connect:
		n = "connect"
	case *pb.Event_Finish:
		n = "finish"
	case *pb.Event_Redirect:
		n = "redirect"
	case *pb.Event_Login:
		n = "login"
	default:
		n = "?"
	}
	return p + n
}

// names joins event names, collapsing runs of data events into one.
func names(evs []*pb.Event) string {
	var s []string
	for _, e := range evs {
		n := evName(e)
		if n == "res:data" && len(s) > 0 && s[len(s)-1] == n {
			continue
		}
		s = append(s, n)
	}
	return strings.Join(s, " ")
}

// eventStream is an Events subscription read step by step.
type eventStream struct {
	t      *testing.T
	stream grpc.ServerStreamingClient[pb.EventsResponse]
	got    []*pb.Event
}

func subscribe(t *testing.T, g *gateway, id string, from uint64) *eventStream {
	t.Helper()
	return subscribeCtx(t, testCtx(t), g, id, from)
}

// subscribeCtx is subscribe with the call's context (a caller's token).
func subscribeCtx(t *testing.T, ctx context.Context, g *gateway, id string, from uint64) *eventStream {
	t.Helper()
	s, err := g.req.Events(ctx, &pb.EventsRequest{RequestId: id, FromSeq: from})
	if err != nil {
		t.Fatal(err)
	}
	return &eventStream{t: t, stream: s}
}

// until reads events until one named name (as evName renders it).
func (s *eventStream) until(name string) *pb.Event {
	s.t.Helper()
	for {
		r, err := s.stream.Recv()
		if err != nil {
			s.t.Fatalf("waiting for %s after %s: %v", name, names(s.got), err)
		}
		s.got = append(s.got, r.GetEvent())
		if evName(r.GetEvent()) == name {
			return r.GetEvent()
		}
	}
}

// rest reads events until the stream ends with OK.
func (s *eventStream) rest() []*pb.Event {
	s.t.Helper()
	for {
		r, err := s.stream.Recv()
		if errors.Is(err, io.EOF) {
			return s.got
		}
		if err != nil {
			s.t.Fatalf("events after %s: %v", names(s.got), err)
		}
		s.got = append(s.got, r.GetEvent())
	}
}

// body concatenates the data events.
func body(evs []*pb.Event) []byte {
	var b []byte
	for _, e := range evs {
		b = append(b, e.GetData().GetChunk()...)
	}
	return b
}

// reasonOf returns the ErrorInfo reason of a status error.
func reasonOf(err error) string {
	st, _ := status.FromError(err)
	for _, d := range st.Details() {
		if info, ok := d.(*errdetails.ErrorInfo); ok {
			return info.GetReason()
		}
	}
	return ""
}

// wantStatus fails unless err has code c and ErrorInfo reason.
func wantStatus(t *testing.T, err error, c codes.Code, reason string) {
	t.Helper()
	if got := status.Code(err); got != c {
		t.Fatalf("status %v (%v), want %v", got, err, c)
	}
	if reason != "" && reasonOf(err) != reason {
		t.Fatalf("reason %q (%v), want %q", reasonOf(err), err, reason)
	}
}

// serveOnce answers the first request on a connection with resp, then
// holds the connection until the peer closes it.
func serveOnce(resp string) func(net.Conn) {
	return func(c net.Conn) {
		br := bufio.NewReader(c)
		if _, _, err := testutil.ReadRequest(br); err != nil {
			return
		}
		_, _ = io.WriteString(c, resp)
		_, _ = io.Copy(io.Discard, br)
	}
}

const okHello = "HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nhello"
const partial = "HTTP/1.1 200 OK\r\nContent-Length: 50\r\n\r\nhel"

// closedPort returns a loopback port nothing listens on.
func closedPort(t *testing.T) int {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	port := ln.Addr().(*net.TCPAddr).Port
	_ = ln.Close()
	return port
}

// blockingResolver resolves every name to 127.0.0.1 once release is
// closed: it holds sockets in their connecting phase.
type blockingResolver struct{ release chan struct{} }

func (r blockingResolver) LookupNetIP(ctx context.Context, _, _ string) ([]netip.Addr, error) {
	select {
	case <-r.release:
		return []netip.Addr{netip.MustParseAddr("127.0.0.1")}, nil
	case <-ctx.Done():
		return nil, ctx.Err()
	}
}

// request creates a request through the Request RPC.
func request(t *testing.T, g *gateway, o *pb.RequestOptions) *pb.ClientRequest {
	t.Helper()
	r, err := g.req.Request(testCtx(t), &pb.RequestRequest{Options: o})
	if err != nil {
		t.Fatal(err)
	}
	return r.GetRequest()
}

func end(t *testing.T, g *gateway, id string, data []byte) {
	t.Helper()
	if _, err := g.req.End(testCtx(t), &pb.EndRequest{RequestId: id, Data: data}); err != nil {
		t.Fatalf("End: %v", err)
	}
}

// openExchange opens an Exchange stream with ctx and returns it with a
// send that fails the test when a message cannot be sent.
func openExchange(t *testing.T, ctx context.Context, g *gateway) (grpc.BidiStreamingClient[pb.ExchangeRequest, pb.ExchangeResponse], func(*pb.ExchangeRequest)) {
	t.Helper()
	st, err := g.req.Exchange(ctx)
	if err != nil {
		t.Fatal(err)
	}
	return st, func(m *pb.ExchangeRequest) {
		t.Helper()
		if err := st.Send(m); err != nil {
			t.Fatal(err)
		}
	}
}
