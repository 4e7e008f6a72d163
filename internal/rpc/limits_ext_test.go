package rpc_test

import (
	"bufio"
	"errors"
	"io"
	"net"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"

	pb "github.com/httpgateway/httpgateway/gen/httpgateway/v1"
	"github.com/httpgateway/httpgateway/internal/limits"
	"github.com/httpgateway/httpgateway/internal/rpc"
	"github.com/httpgateway/httpgateway/internal/testutil"
)

// wantLimit fails unless err is RESOURCE_EXHAUSTED with the limit's code
// and no RetryInfo (the same request would meet the same bound).
func wantLimit(t *testing.T, err error, code string) {
	t.Helper()
	wantStatus(t, err, codes.ResourceExhausted, code)
	if d := retryDelay(err); d != 0 {
		t.Fatalf("RetryInfo %v on a size limit", d)
	}
}

// sink is an upstream that reads each connection to its end. It counts
// the connections, reports each on opened, and on closed once the gateway
// closed it (EOF or reset): the socket of a request ended by a limit.
type sink struct {
	*testutil.Upstream
	accepted       atomic.Int32
	opened, closed chan struct{}
}

func newSink(t *testing.T) *sink {
	s := &sink{opened: make(chan struct{}, 16), closed: make(chan struct{}, 16)}
	s.Upstream = testutil.NewUpstream(t, func(c net.Conn) {
		s.accepted.Add(1)
		s.opened <- struct{}{}
		_, _ = io.Copy(io.Discard, c)
		s.closed <- struct{}{}
	})
	return s
}

func (s *sink) url() string { return "http://127.0.0.1:" + strconv.Itoa(s.Port) + "/" }

// wait waits for a signal of ch (opened or closed).
func (s *sink) wait(t *testing.T, ch chan struct{}, what string) {
	t.Helper()
	select {
	case <-ch:
	case <-testCtx(t).Done():
		t.Fatalf("no upstream connection %s", what)
	}
}

// eventsOf reads an Events stream to its end and returns the events and
// the status it ended with (nil for OK).
func eventsOf(t *testing.T, g *gateway, id string) ([]*pb.Event, error) {
	t.Helper()
	s, err := g.req.Events(testCtx(t), &pb.EventsRequest{RequestId: id})
	if err != nil {
		t.Fatal(err)
	}
	var evs []*pb.Event
	for {
		r, err := s.Recv()
		if errors.Is(err, io.EOF) {
			return evs, nil
		}
		if err != nil {
			return evs, err
		}
		evs = append(evs, r.GetEvent())
	}
}

// exchangeOf runs an Exchange: it sends start, calls afterStart (if not
// nil), sends ops, half-closes, and returns the events, the refused ops'
// codes and the final status.
func exchangeOf(t *testing.T, g *gateway, start *pb.RequestOptions, afterStart func(), ops ...*pb.ExchangeRequest) (evs []*pb.Event, refused []string, err error) {
	t.Helper()
	st, err := g.req.Exchange(testCtx(t))
	if err != nil {
		t.Fatal(err)
	}
	if err := st.Send(&pb.ExchangeRequest{Op: &pb.ExchangeRequest_Start{Start: start}}); err != nil {
		t.Fatal(err)
	}
	if afterStart != nil {
		afterStart()
	}
	for _, m := range ops {
		if err := st.Send(m); err != nil {
			t.Fatal(err)
		}
	}
	_ = st.CloseSend()
	for {
		m, err := st.Recv()
		if errors.Is(err, io.EOF) {
			return evs, refused, nil
		}
		if err != nil {
			return evs, refused, err
		}
		if e := m.GetEvent(); e != nil {
			evs = append(evs, e)
		}
		if r := m.GetOpRefused(); r != nil {
			refused = append(refused, r.GetError().GetCode())
		}
	}
}

func TestHeaderBytesLimit(t *testing.T) {
	testutil.CheckLeaks(t)
	up := testutil.NewUpstream(t, keepAliveServer)
	url := "http://127.0.0.1:" + strconv.Itoa(up.Port) + "/"
	// "X-A: <20 bytes>\r\n" is 28 bytes: two fit in 60, three do not.
	g := startGateway(t, rpc.Options{Limits: limits.New(limits.Options{MaxHeaderBytes: 60})})
	ctx := testCtx(t)
	v20 := strings.Repeat("v", 20)
	three := []*pb.Header{{Name: "X-A", Value: v20}, {Name: "X-B", Value: v20}, {Name: "X-C", Value: v20}}

	t.Run("at creation", func(t *testing.T) {
		_, err := g.req.Request(ctx, &pb.RequestRequest{Options: &pb.RequestOptions{Url: url, Headers: three}})
		wantLimit(t, err, limits.CodeHeadersTooLarge)
		_, err = g.req.Fetch(ctx, &pb.FetchRequest{Url: url, Headers: three})
		wantLimit(t, err, limits.CodeHeadersTooLarge)
		if n := g.svc.LiveRequests(); n != 0 {
			t.Fatalf("%d handles left by refused creations", n)
		}
	})
	t.Run("edits", func(t *testing.T) {
		id := request(t, g, &pb.RequestOptions{Url: url, Headers: three[:1]}).GetRequestId()
		if _, err := g.req.SetHeader(ctx, &pb.SetHeaderRequest{RequestId: id, Name: "X-B", Values: []string{v20}}); err != nil {
			t.Fatalf("second header: %v", err)
		}
		_, err := g.req.AppendHeader(ctx, &pb.AppendHeaderRequest{RequestId: id, Name: "X-C", Values: []string{v20}})
		wantLimit(t, err, limits.CodeHeadersTooLarge)
		_, err = g.req.SetHeader(ctx, &pb.SetHeaderRequest{RequestId: id, Name: "x-b", Values: []string{v20, "w"}})
		wantLimit(t, err, limits.CodeHeadersTooLarge)
		// Replacing a header counts its old lines out.
		if _, err := g.req.SetHeader(ctx, &pb.SetHeaderRequest{RequestId: id, Name: "x-b", Values: []string{"short"}}); err != nil {
			t.Fatalf("smaller replacement: %v", err)
		}
		// A refused edit changed nothing and the request goes on.
		if h, err := g.req.HasHeader(ctx, &pb.HasHeaderRequest{RequestId: id, Name: "X-C"}); err != nil || h.GetPresent() {
			t.Fatalf("X-C after the refused append: %v %v", h, err)
		}
		end(t, g, id, nil)
		evs, err := eventsOf(t, g, id)
		if err != nil || names(evs) != "req:socket req:finish req:response res:data res:end res:close req:close" {
			t.Fatalf("events %s, %v", names(evs), err)
		}
	})
	t.Run("exchange op", func(t *testing.T) {
		evs, refused, err := exchangeOf(t, g, &pb.RequestOptions{Url: url, Headers: three[:2]}, nil,
			&pb.ExchangeRequest{Op: &pb.ExchangeRequest_AppendHeader{AppendHeader: &pb.HeaderOp{Name: "X-C", Values: []string{v20}}}},
			&pb.ExchangeRequest{Op: &pb.ExchangeRequest_End{End: &pb.EndOp{}}})
		if err != nil || len(refused) != 1 || refused[0] != limits.CodeHeadersTooLarge || string(body(evs)) != "hello" {
			t.Fatalf("exchange: %v, refused %v, events %s", err, refused, names(evs))
		}
	})
}

func TestRequestBodyLimit(t *testing.T) {
	testutil.CheckLeaks(t)
	up := newSink(t)
	g := startGateway(t, rpc.Options{Limits: limits.New(limits.Options{MaxRequestBodyBytes: 10})})
	ctx := testCtx(t)
	post := &pb.RequestOptions{Url: up.url(), Method: "POST"}
	// A request ended by the bound: its events end with the limit's error,
	// its Events stream with the limit's status, and its socket is closed.
	// (Each test waits for the socket to be connected before it crosses
	// the bound, so that there is a connection to see closed.)
	wantEnded := func(t *testing.T, evs []*pb.Event, err error) {
		t.Helper()
		wantLimit(t, err, limits.CodeRequestBodyTooLarge)
		if got := names(evs); !strings.HasSuffix(got, "req:error("+limits.CodeRequestBodyTooLarge+") req:close") {
			t.Fatalf("events %s", got)
		}
		up.wait(t, up.closed, "closed")
	}

	t.Run("write", func(t *testing.T) {
		id := request(t, g, post).GetRequestId()
		up.wait(t, up.opened, "opened")
		w, err := g.req.Write(ctx)
		if err != nil {
			t.Fatal(err)
		}
		for _, chunk := range []string{"123456", "7890", "x"} {
			if err := w.Send(&pb.WriteRequest{RequestId: id, Chunk: []byte(chunk)}); err != nil && !errors.Is(err, io.EOF) {
				t.Fatal(err)
			}
		}
		_, err = w.CloseAndRecv()
		wantLimit(t, err, limits.CodeRequestBodyTooLarge)
		evs, err := eventsOf(t, g, id)
		wantEnded(t, evs, err)
	})
	t.Run("end", func(t *testing.T) {
		id := request(t, g, post).GetRequestId()
		up.wait(t, up.opened, "opened")
		_, err := g.req.End(ctx, &pb.EndRequest{RequestId: id, Data: []byte("12345678901")})
		wantLimit(t, err, limits.CodeRequestBodyTooLarge)
		evs, err := eventsOf(t, g, id)
		wantEnded(t, evs, err)
	})
	t.Run("exchange", func(t *testing.T) {
		evs, refused, err := exchangeOf(t, g, post, func() { up.wait(t, up.opened, "opened") },
			&pb.ExchangeRequest{Op: &pb.ExchangeRequest_Write{Write: []byte("1234567890")}},
			&pb.ExchangeRequest{Op: &pb.ExchangeRequest_End{End: &pb.EndOp{Data: []byte("x")}}})
		if len(refused) != 1 || refused[0] != limits.CodeRequestBodyTooLarge {
			t.Fatalf("refused ops %v", refused)
		}
		wantEnded(t, evs, err)
	})
	t.Run("fetch", func(t *testing.T) {
		before := up.accepted.Load()
		_, err := g.req.Fetch(ctx, &pb.FetchRequest{Url: up.url(), Method: "POST", Body: []byte("12345678901")})
		wantLimit(t, err, limits.CodeRequestBodyTooLarge)
		if up.accepted.Load() != before {
			t.Fatal("a Fetch over the body bound reached the upstream")
		}
	})
}

func TestResponseBodyLimit(t *testing.T) {
	testutil.CheckLeaks(t)
	big := strings.Repeat("b", 10000)
	closed := make(chan struct{}, 8)
	up := testutil.NewUpstream(t, func(c net.Conn) {
		defer func() {
			select {
			case closed <- struct{}{}:
			default: // nobody waits for this one
			}
		}()
		br := bufio.NewReader(c)
		for {
			head, _, err := testutil.ReadRequest(br)
			if err != nil {
				return
			}
			b := "small"
			if strings.HasPrefix(head, "GET /big") {
				b = big
			}
			// The body in pieces, so that some fit under the bound.
			if _, err := io.WriteString(c, "HTTP/1.1 200 OK\r\nContent-Length: "+strconv.Itoa(len(b))+"\r\n\r\n"); err != nil {
				return
			}
			for i := 0; i < len(b); i += 1000 {
				if _, err := io.WriteString(c, b[i:min(i+1000, len(b))]); err != nil {
					return
				}
			}
		}
	})
	base := "http://127.0.0.1:" + strconv.Itoa(up.Port)
	g := startGateway(t, rpc.Options{Limits: limits.New(limits.Options{MaxResponseBodyBytes: 4096})})
	ctx := testCtx(t)
	// A response cut at the bound: the stream ends with the limit's status
	// right after the last data within it (no 'end' after a cut body), and
	// the request's socket is closed.
	wantCut := func(t *testing.T, evs []*pb.Event, err error) {
		t.Helper()
		wantLimit(t, err, limits.CodeResponseBodyTooLarge)
		if n := len(body(evs)); n > 4096 {
			t.Fatalf("%d body bytes delivered past the bound of 4096", n)
		}
		if got := names(evs); !strings.HasPrefix(got, "req:socket req:finish req:response") || strings.Contains(got, "res:end") {
			t.Fatalf("events %s", got)
		}
		select {
		case <-closed:
		case <-testCtx(t).Done():
			t.Fatal("the socket of the cut response stayed open")
		}
	}

	t.Run("events", func(t *testing.T) {
		id := request(t, g, &pb.RequestOptions{Url: base + "/big"}).GetRequestId()
		end(t, g, id, nil)
		evs, err := eventsOf(t, g, id)
		wantCut(t, evs, err)
	})
	t.Run("exchange", func(t *testing.T) {
		evs, _, err := exchangeOf(t, g, &pb.RequestOptions{Url: base + "/big"}, nil, &pb.ExchangeRequest{Op: &pb.ExchangeRequest_End{End: &pb.EndOp{}}})
		wantCut(t, evs, err)
	})
	t.Run("within the bound", func(t *testing.T) {
		evs, _, err := exchangeOf(t, g, &pb.RequestOptions{Url: base + "/small"}, nil, &pb.ExchangeRequest{Op: &pb.ExchangeRequest_End{End: &pb.EndOp{}}})
		if err != nil || string(body(evs)) != "small" {
			t.Fatalf("small response: %v %q", err, body(evs))
		}
	})
	t.Run("fetch", func(t *testing.T) {
		_, err := g.req.Fetch(ctx, &pb.FetchRequest{Url: base + "/big"})
		wantLimit(t, err, limits.CodeResponseBodyTooLarge)
		// The caller's own lower cap is Fetch's, with Fetch's code.
		_, err = g.req.Fetch(ctx, &pb.FetchRequest{Url: base + "/big", MaxResponseBytes: 100})
		wantLimit(t, err, "ERR_GATEWAY_RESPONSE_TOO_LARGE")
		if res, err := g.req.Fetch(ctx, &pb.FetchRequest{Url: base + "/small"}); err != nil || string(res.GetBody()) != "small" {
			t.Fatalf("small fetch: %v", err)
		}
	})
}

func TestTunnelLimits(t *testing.T) {
	testutil.CheckLeaks(t)
	upgraded := "HTTP/1.1 101 Switching Protocols\r\nUpgrade: echo\r\nConnection: Upgrade\r\n\r\n"
	tests := []struct {
		name  string
		opts  limits.Options
		sends []string // each echoed before the next is sent
		last  string   // sent after them; "" sends nothing
		code  string
	}{
		{name: "duration", opts: limits.Options{MaxTunnelDuration: 50 * time.Millisecond}, sends: []string{"ping"}, code: limits.CodeTunnelTooLong},
		{name: "bytes", opts: limits.Options{MaxTunnelBytes: 8}, sends: []string{"ping"}, last: "x", code: limits.CodeTunnelTooLarge},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			closed := make(chan struct{}, 1)
			up := testutil.NewUpstream(t, func(c net.Conn) {
				echoAfter(upgraded, "")(c)
				closed <- struct{}{}
			})
			g := startGateway(t, rpc.Options{Limits: limits.New(tt.opts)})
			id := request(t, g, &pb.RequestOptions{Url: "http://127.0.0.1:" + strconv.Itoa(up.Port) + "/",
				Headers: []*pb.Header{{Name: "Connection", Value: "Upgrade"}, {Name: "Upgrade", Value: "echo"}}}).GetRequestId()
			end(t, g, id, nil)
			if evs, err := eventsOf(t, g, id); err != nil || names(evs) != "req:socket req:finish req:upgrade req:close" {
				t.Fatalf("events %s, %v", names(evs), err)
			}
			st, err := g.req.Tunnel(testCtx(t))
			if err != nil {
				t.Fatal(err)
			}
			send := func(m *pb.TunnelRequest) {
				if err := st.Send(m); err != nil && !errors.Is(err, io.EOF) {
					t.Fatal(err)
				}
			}
			send(&pb.TunnelRequest{Frame: &pb.TunnelRequest_RequestId{RequestId: id}})
			for _, s := range tt.sends {
				send(&pb.TunnelRequest{Frame: &pb.TunnelRequest_Data{Data: []byte(s)}})
				if err := recvTunnel(st, len(s)); err != nil {
					t.Fatalf("echo of %q: %v", s, err)
				}
			}
			if tt.last != "" {
				send(&pb.TunnelRequest{Frame: &pb.TunnelRequest_Data{Data: []byte(tt.last)}})
			}
			err = recvTunnel(st, 1<<20) // until the stream ends
			wantLimit(t, err, tt.code)
			select { // the upstream connection was closed
			case <-closed:
			case <-testCtx(t).Done():
				t.Fatal("the tunnel's socket stayed open")
			}
		})
	}
}

// recvTunnel reads n data bytes from a Tunnel, or until it fails.
func recvTunnel(st grpc.BidiStreamingClient[pb.TunnelRequest, pb.TunnelResponse], n int) error {
	for got := 0; got < n; {
		r, err := st.Recv()
		if err != nil {
			return err
		}
		got += len(r.GetData())
	}
	return nil
}
