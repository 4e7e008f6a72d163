package rpc_test

import (
	"bufio"
	"context"
	"io"
	"net"
	"strconv"
	"testing"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	pb "github.com/httpgateway/httpgateway/gen/httpgateway/v1"
	"github.com/httpgateway/httpgateway/internal/agentpool"
	"github.com/httpgateway/httpgateway/internal/rpc"
	"github.com/httpgateway/httpgateway/internal/testutil"
)

// TestEventOrder checks every event order of DESIGN.md as an Events
// subscriber sees it through gRPC. One subscription per request watches
// from the start while the test drives the request with the unary RPCs.
func TestEventOrder(t *testing.T) {
	tests := []struct {
		name string
		// script is the upstream; nil means a port nothing listens on.
		script func(net.Conn)
		// blockDial holds the socket in its connecting phase.
		blockDial bool
		// drive acts on the request while s watches it.
		drive func(t *testing.T, g *gateway, id string, s *eventStream)
		want  string
	}{
		{
			name:   "success",
			script: serveOnce(okHello),
			drive:  func(t *testing.T, g *gateway, id string, _ *eventStream) { end(t, g, id, nil) },
			want:   "req:socket req:finish req:response res:data res:end res:close req:close",
		},
		{
			name:  "connection refused",
			drive: func(*testing.T, *gateway, string, *eventStream) {},
			want:  "req:socket req:error(ECONNREFUSED) req:close",
		},
		{
			name:   "premature close before response",
			script: func(c net.Conn) { _, _, _ = testutil.ReadRequest(bufio.NewReader(c)) },
			drive:  func(t *testing.T, g *gateway, id string, _ *eventStream) { end(t, g, id, nil) },
			want:   "req:socket req:finish req:error(ECONNRESET) req:close",
		},
		{
			name: "premature close after response",
			script: func(c net.Conn) {
				_, _, _ = testutil.ReadRequest(bufio.NewReader(c))
				_, _ = io.WriteString(c, partial)
			},
			drive: func(t *testing.T, g *gateway, id string, _ *eventStream) { end(t, g, id, nil) },
			want:  "req:socket req:finish req:response res:data res:aborted req:close res:error(ECONNRESET) res:close",
		},
		{
			name:      "destroy before connected",
			script:    serveOnce(okHello),
			blockDial: true,
			drive: func(t *testing.T, g *gateway, id string, s *eventStream) {
				s.until("req:socket")
				destroy(t, g, id, nil)
			},
			want: "req:socket req:error(ECONNRESET) req:close",
		},
		{
			name:   "destroy after response",
			script: serveOnce(partial),
			drive: func(t *testing.T, g *gateway, id string, s *eventStream) {
				end(t, g, id, nil)
				s.until("res:data")
				destroy(t, g, id, nil)
			},
			want: "req:socket req:finish req:response res:data res:aborted req:close res:error(ECONNRESET) res:close",
		},
		{
			name:   "destroy with error after response",
			script: serveOnce(partial),
			drive: func(t *testing.T, g *gateway, id string, s *eventStream) {
				end(t, g, id, nil)
				s.until("res:data")
				destroy(t, g, id, &pb.NodeError{Code: "EBOOM", Message: "boom"})
			},
			want: "req:socket req:finish req:response res:data res:aborted req:close res:error(EBOOM) res:close",
		},
		{
			name:      "abort before connected",
			script:    serveOnce(okHello),
			blockDial: true,
			drive: func(t *testing.T, g *gateway, id string, s *eventStream) {
				s.until("req:socket")
				abort(t, g, id)
			},
			want: "req:socket req:abort req:error(ECONNRESET) req:close",
		},
		{
			name:   "abort after response",
			script: serveOnce(partial),
			drive: func(t *testing.T, g *gateway, id string, s *eventStream) {
				end(t, g, id, nil)
				s.until("res:data")
				abort(t, g, id)
			},
			want: "req:socket req:finish req:response res:data req:abort res:aborted res:error(ECONNRESET) req:close res:close",
		},
		{
			name:   "informational and continue",
			script: serveOnce("HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 103 Early Hints\r\nLink: </a>\r\n\r\n" + okHello),
			drive:  func(t *testing.T, g *gateway, id string, _ *eventStream) { end(t, g, id, nil) },
			want:   "req:socket req:finish req:continue req:information req:information req:response res:data res:end res:close req:close",
		},
		{
			name:   "bad chunk mid-body",
			script: serveOnce("HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\nzz\r\n"),
			drive:  func(t *testing.T, g *gateway, id string, _ *eventStream) { end(t, g, id, nil) },
			want:   "req:socket req:finish req:response res:data req:error(HPE_INVALID_CHUNK_SIZE) res:aborted req:close res:error(ECONNRESET) res:close",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			testutil.CheckLeaks(t)
			port := closedPort(t)
			if tt.script != nil {
				port = testutil.NewUpstream(t, tt.script).Port
			}
			o := rpc.Options{}
			host := "127.0.0.1"
			if tt.blockDial {
				r := blockingResolver{release: make(chan struct{})}
				t.Cleanup(func() { close(r.release) })
				o.AgentDeps = agentpool.Deps{Resolver: r}
				host = "blocked.test"
			}
			g := startGateway(t, o)
			cr := request(t, g, &pb.RequestOptions{Host: host, Port: int32(port), Path: "/"})
			s := subscribe(t, g, cr.GetRequestId(), 0)
			tt.drive(t, g, cr.GetRequestId(), s)
			evs := s.rest()
			if got := names(evs); got != tt.want {
				t.Fatalf("events\n got: %s\nwant: %s", got, tt.want)
			}
			checkSeqs(t, evs)
			for _, ev := range evs {
				if e := ev.GetError().GetError(); e.GetCode() == "ECONNREFUSED" {
					if e.GetSyscall() != "connect" || e.GetPort() != int32(port) || e.GetAddress() == "" || e.GetMessage() == "" {
						t.Errorf("ECONNREFUSED error lacks message/syscall/address/port: %v", e)
					}
				}
			}
		})
	}
}

// checkSeqs checks that seq counts from 1 without gaps and that the
// monotonic timestamps never go back.
func checkSeqs(t *testing.T, evs []*pb.Event) {
	t.Helper()
	var mono int64
	for i, e := range evs {
		if e.GetSeq() != uint64(i+1) {
			t.Fatalf("event %d has seq %d", i+1, e.GetSeq())
		}
		if e.GetMonoNanos() < mono || e.GetTime() == nil {
			t.Fatalf("event %d: mono %d after %d, time %v", i+1, e.GetMonoNanos(), mono, e.GetTime())
		}
		mono = e.GetMonoNanos()
	}
}

// TestEventOrderBeforeSocket covers destroy() and abort() while the request
// waits for a socket: the agent allows one socket, held by another request.
func TestEventOrderBeforeSocket(t *testing.T) {
	tests := []struct {
		name string
		act  func(t *testing.T, g *gateway, id string)
		want string
	}{
		{name: "destroy", act: func(t *testing.T, g *gateway, id string) { destroy(t, g, id, nil) }, want: "req:error(ECONNRESET) req:close"},
		{name: "abort", act: func(t *testing.T, g *gateway, id string) { abort(t, g, id) }, want: "req:abort req:close"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			testutil.CheckLeaks(t)
			up := testutil.NewUpstream(t, serveOnce(okHello))
			g := startGateway(t, rpc.Options{})
			ctx := testCtx(t)
			if _, err := g.agents.CreateAgent(ctx, &pb.CreateAgentRequest{Name: "one", Options: &pb.AgentOptions{MaxSockets: 1}}); err != nil {
				t.Fatal(err)
			}
			o := &pb.RequestOptions{Url: "http://127.0.0.1:" + strconv.Itoa(up.Port) + "/", Agent: "one"}
			first := request(t, g, o)
			s1 := subscribe(t, g, first.GetRequestId(), 0)
			s1.until("req:socket")
			second := request(t, g, o)
			tt.act(t, g, second.GetRequestId())
			if got := names(subscribe(t, g, second.GetRequestId(), 0).rest()); got != tt.want {
				t.Fatalf("events\n got: %s\nwant: %s", got, tt.want)
			}
			end(t, g, first.GetRequestId(), nil)
			s1.rest()
		})
	}
}

// TestEventsCancelIsAbortSignal: cancelling an Events stream mid-body acts
// as an AbortSignal; a resubscription from a sequence number sees the rest.
func TestEventsCancelIsAbortSignal(t *testing.T) {
	testutil.CheckLeaks(t)
	up := testutil.NewUpstream(t, serveOnce(partial))
	g := startGateway(t, rpc.Options{})
	cr := request(t, g, &pb.RequestOptions{Url: "http://127.0.0.1:" + strconv.Itoa(up.Port) + "/"})
	id := cr.GetRequestId()
	ctx, cancel := context.WithCancel(testCtx(t))
	st, err := g.req.Events(ctx, &pb.EventsRequest{RequestId: id})
	if err != nil {
		t.Fatal(err)
	}
	end(t, g, id, nil)
	var seen uint64
	for {
		r, err := st.Recv()
		if err != nil {
			t.Fatal(err)
		}
		seen = r.GetEvent().GetSeq()
		if evName(r.GetEvent()) == "res:data" {
			break
		}
	}
	cancel()
	for {
		_, err := st.Recv()
		if err == nil {
			continue // received before the cancel
		}
		if status.Code(err) != codes.Canceled {
			t.Fatalf("Recv after cancel: %v", err)
		}
		break
	}
	// Resubscribe from the next seq: the AbortSignal's sequence follows.
	rest := subscribe(t, g, id, seen+1).rest()
	want := "req:error(ABORT_ERR) res:aborted req:close res:error(ECONNRESET) res:close"
	if got := names(rest); got != want {
		t.Fatalf("after cancel\n got: %s\nwant: %s", got, want)
	}
	if rest[0].GetSeq() != seen+1 {
		t.Fatalf("resubscription started at seq %d, want %d", rest[0].GetSeq(), seen+1)
	}
}

func destroy(t *testing.T, g *gateway, id string, e *pb.NodeError) {
	t.Helper()
	if _, err := g.req.Destroy(testCtx(t), &pb.DestroyRequest{RequestId: id, Error: e}); err != nil {
		t.Fatalf("Destroy: %v", err)
	}
}

func abort(t *testing.T, g *gateway, id string) {
	t.Helper()
	if _, err := g.req.Abort(testCtx(t), &pb.AbortRequest{RequestId: id}); err != nil {
		t.Fatalf("Abort: %v", err)
	}
}
