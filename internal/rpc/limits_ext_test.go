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
	"google.golang.org/grpc/status"

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

// TestHeaderBytesLimitCredentials checks that the Authorization lines made
// of a caller's credentials count against the header bound: auth and the
// URL's user info at creation, and Login's credentials.
func TestHeaderBytesLimitCredentials(t *testing.T) {
	testutil.CheckLeaks(t)
	// Asks for credentials (401) until a request carries Authorization;
	// what the upstream got is on authorizations.
	authorizations := make(chan string, 16)
	up := testutil.NewUpstream(t, func(c net.Conn) {
		br := bufio.NewReader(c)
		for {
			head, _, err := testutil.ReadRequest(br)
			if err != nil {
				return
			}
			resp := "HTTP/1.1 401 Unauthorized\r\nWWW-Authenticate: Basic realm=\"r\"\r\nContent-Length: 0\r\n\r\n"
			for _, l := range strings.Split(head, "\r\n") {
				if name, v, ok := strings.Cut(l, ": "); ok && strings.EqualFold(name, "authorization") {
					authorizations <- v
					resp = okHello
				}
			}
			if _, err := io.WriteString(c, resp); err != nil {
				return
			}
		}
	})
	base := "127.0.0.1:" + strconv.Itoa(up.Port) + "/"
	// "Authorization: Basic <base64>\r\n" is 23 bytes and 4/3 of the
	// credentials: "u:" and 40 bytes make 79, "u:" and 60 make 107.
	g := startGateway(t, rpc.Options{Limits: limits.New(limits.Options{MaxHeaderBytes: 100})})
	ctx := testCtx(t)
	fits, long := "u:"+strings.Repeat("p", 40), "u:"+strings.Repeat("p", 60)

	t.Run("at creation", func(t *testing.T) {
		for _, o := range []*pb.RequestOptions{
			{Url: "http://" + base, Auth: long},
			{Url: "http://" + long + "@" + base},
			{Url: "http://" + base, Auth: "u:" + strings.Repeat("p", 1<<20)},
		} {
			_, err := g.req.Request(ctx, &pb.RequestRequest{Options: o})
			wantLimit(t, err, limits.CodeHeadersTooLarge)
			_, err = g.req.Fetch(ctx, &pb.FetchRequest{Url: o.GetUrl(), Options: &pb.RequestOptions{Auth: o.GetAuth()}})
			wantLimit(t, err, limits.CodeHeadersTooLarge)
		}
		if len(authorizations) != 0 {
			t.Fatal("a request over the header bound reached the upstream")
		}
		// Within the bound, from either source.
		for _, f := range []*pb.FetchRequest{{Url: "http://" + base, Options: &pb.RequestOptions{Auth: fits}}, {Url: "http://" + fits + "@" + base}} {
			if res, err := g.req.Fetch(ctx, f); err != nil || string(res.GetBody()) != "hello" {
				t.Fatalf("Fetch within the bound: %v", err)
			}
			if got := <-authorizations; len(got) != len("Basic ")+56 {
				t.Fatalf("Authorization %q", got)
			}
		}
		// A caller's own Authorization takes the place of auth's: only it
		// is sent, and only it counts.
		if _, err := g.req.Fetch(ctx, &pb.FetchRequest{Url: "http://" + base, Options: &pb.RequestOptions{Auth: long},
			Headers: []*pb.Header{{Name: "Authorization", Value: "Bearer t"}}}); err != nil {
			t.Fatalf("Fetch with its own Authorization: %v", err)
		}
		if got := <-authorizations; got != "Bearer t" {
			t.Fatalf("Authorization %q", got)
		}
	})
	t.Run("replaced by setHeader", func(t *testing.T) {
		// auth's line counts as the request's Authorization header: a
		// setHeader of it counts it out.
		id := request(t, g, &pb.RequestOptions{Url: "http://" + base, Auth: fits}).GetRequestId()
		_, err := g.req.AppendHeader(ctx, &pb.AppendHeaderRequest{RequestId: id, Name: "X-A", Values: []string{strings.Repeat("v", 20)}})
		wantLimit(t, err, limits.CodeHeadersTooLarge)
		if _, err := g.req.SetHeader(ctx, &pb.SetHeaderRequest{RequestId: id, Name: "authorization", Values: []string{"Bearer t"}}); err != nil {
			t.Fatal(err)
		}
		if _, err := g.req.AppendHeader(ctx, &pb.AppendHeaderRequest{RequestId: id, Name: "X-A", Values: []string{strings.Repeat("v", 20)}}); err != nil {
			t.Fatalf("X-A after Authorization was replaced: %v", err)
		}
		end(t, g, id, nil)
		if evs, err := eventsOf(t, g, id); err != nil || string(body(evs)) != "hello" {
			t.Fatalf("events %s, %v", names(evs), err)
		}
		<-authorizations
	})
	t.Run("login", func(t *testing.T) {
		// 28 header bytes; Login's line counts as Proxy-Authorization's,
		// 29 bytes and 4/3 of "user:password".
		id := request(t, g, &pb.RequestOptions{Url: "http://" + base, LoginOnServerAuth: true,
			Headers: []*pb.Header{{Name: "X-A", Value: strings.Repeat("v", 20)}}}).GetRequestId()
		end(t, g, id, nil)
		s := subscribe(t, g, id, 1)
		for {
			r, err := s.stream.Recv()
			if err != nil {
				t.Fatalf("waiting for login after %s: %v", names(s.got), err)
			}
			s.got = append(s.got, r.GetEvent())
			if r.GetEvent().GetLogin() != nil {
				break
			}
		}
		_, err := g.req.Login(ctx, &pb.LoginRequest{RequestId: id, Username: "u", Password: strings.Repeat("p", 40)})
		wantLimit(t, err, limits.CodeHeadersTooLarge)
		// The refused Login changed nothing: the 'login' still waits.
		if _, err := g.req.Login(ctx, &pb.LoginRequest{RequestId: id, Username: "u", Password: "p"}); err != nil {
			t.Fatalf("Login within the bound: %v", err)
		}
		if got := <-authorizations; got != "Basic dTpw" {
			t.Fatalf("Authorization %q", got)
		}
		if evs := s.rest(); string(body(evs)) != "hello" {
			t.Fatalf("events %s", names(evs))
		}
	})
	t.Run("exchange login op", func(t *testing.T) {
		st, err := g.req.Exchange(ctx)
		if err != nil {
			t.Fatal(err)
		}
		send := func(op *pb.ExchangeRequest) {
			if err := st.Send(op); err != nil {
				t.Fatal(err)
			}
		}
		login := func(pass string) *pb.ExchangeRequest {
			return &pb.ExchangeRequest{Op: &pb.ExchangeRequest_Login{Login: &pb.LoginOp{Username: "u", Password: pass}}}
		}
		send(&pb.ExchangeRequest{Op: &pb.ExchangeRequest_Start{Start: &pb.RequestOptions{Url: "http://" + base, LoginOnServerAuth: true}}})
		send(&pb.ExchangeRequest{Op: &pb.ExchangeRequest_End{End: &pb.EndOp{}}})
		var refused []string
		var data []byte
		for {
			m, err := st.Recv()
			if errors.Is(err, io.EOF) {
				break
			}
			if err != nil {
				t.Fatal(err)
			}
			if m.GetEvent().GetLogin() != nil {
				send(login(strings.Repeat("p", 80)))
			}
			if r := m.GetOpRefused(); r != nil {
				refused = append(refused, r.GetError().GetCode())
				send(login("p"))
				_ = st.CloseSend()
			}
			data = append(data, m.GetEvent().GetData().GetChunk()...)
		}
		if len(refused) != 1 || refused[0] != limits.CodeHeadersTooLarge || string(data) != "hello" {
			t.Fatalf("refused %v, body %q", refused, data)
		}
		if got := <-authorizations; got != "Basic dTpw" {
			t.Fatalf("Authorization %q", got)
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

// TestResponseBodyLimitTwoStreams checks that the response body bound holds
// however the caller splits the events among streams: a stream that starts
// ahead (from_seq) skips data events another stream may still read, and
// those must count as well. The upstream sends 1000-byte chunks, four and
// then (once both streams are placed) six more; the bound is 4096.
func TestResponseBodyLimitTwoStreams(t *testing.T) {
	testutil.CheckLeaks(t)
	const chunk = 1000
	chunks := func(n int) string {
		return strings.Repeat(strconv.FormatInt(chunk, 16)+"\r\n"+strings.Repeat("b", chunk)+"\r\n", n)
	}
	more := make(chan struct{})
	closed := make(chan struct{}, 1)
	up := testutil.NewUpstream(t, func(c net.Conn) {
		defer func() { closed <- struct{}{} }()
		br := bufio.NewReader(c)
		if _, _, err := testutil.ReadRequest(br); err != nil {
			return
		}
		// Chunked framing: each chunk is a data event of its own.
		if _, err := io.WriteString(c, "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n"+chunks(4)); err != nil {
			return
		}
		<-more
		_, _ = io.WriteString(c, chunks(6)+"0\r\n\r\n")
		_, _ = io.Copy(io.Discard, br)
	})
	moreSent := false
	t.Cleanup(func() { // before the upstream closes, on failure too
		if !moreSent {
			close(more)
		}
	})
	g := startGateway(t, rpc.Options{Limits: limits.New(limits.Options{MaxResponseBodyBytes: 4096})})
	id := request(t, g, &pb.RequestOptions{Url: "http://127.0.0.1:" + strconv.Itoa(up.Port) + "/"}).GetRequestId()
	end(t, g, id, nil)

	// Events 1-3 are socket, finish and response; 4-7 the first four
	// chunks. S starts at 7 and gets it: 3000 bytes were read before it.
	recvData := func(s *eventStream, seq uint64) {
		t.Helper()
		r, err := s.stream.Recv()
		if err != nil {
			t.Fatalf("event %d: %v", seq, err)
		}
		s.got = append(s.got, r.GetEvent())
		if ev := r.GetEvent(); ev.GetSeq() != seq || len(ev.GetData().GetChunk()) != chunk {
			t.Fatalf("event %d is %s (seq %d, %d bytes), want a chunk", seq, evName(ev), ev.GetSeq(), len(ev.GetData().GetChunk()))
		}
	}
	s := subscribe(t, g, id, 7)
	recvData(s, 7)
	// T starts at 4, the events S skipped: 4000 bytes so far, in bound.
	tt := subscribe(t, g, id, 4)
	for seq := uint64(4); seq <= 7; seq++ {
		recvData(tt, seq)
	}
	moreSent = true
	close(more)

	// The next chunk takes the body past the bound, for both streams. The
	// stream that reaches it first ends with the limit; the other may find
	// it already dropped from the event log (delivered, and more read
	// behind it), which is OUT_OF_RANGE as for any event no longer kept.
	delivered := map[uint64]int{} // data bytes by seq, over both streams
	limited := 0
	for _, st := range []*eventStream{s, tt} {
		var err error
		for {
			var r *pb.EventsResponse
			if r, err = st.stream.Recv(); err != nil {
				break
			}
			st.got = append(st.got, r.GetEvent())
		}
		if status.Code(err) == codes.OutOfRange {
			wantStatus(t, err, codes.OutOfRange, "ERR_GATEWAY_EVENT_GONE")
		} else {
			wantLimit(t, err, limits.CodeResponseBodyTooLarge)
			limited++
		}
		if n := len(body(st.got)); n > 4096 {
			t.Fatalf("a stream got %d body bytes past the bound of 4096 (%s)", n, names(st.got))
		}
		for _, ev := range st.got {
			delivered[ev.GetSeq()] = len(ev.GetData().GetChunk())
		}
	}
	if limited == 0 {
		t.Fatal("no stream ended with the response body bound")
	}
	total := 0
	for _, n := range delivered {
		total += n
	}
	if total > 4096 {
		t.Fatalf("%d distinct body bytes delivered past the bound of 4096", total)
	}
	select {
	case <-closed:
	case <-testCtx(t).Done():
		t.Fatal("the socket of the cut response stayed open")
	}
}

// TestHeaderBytesLimitProxyCredentials: the credentials of a proxy_env
// URL become a Proxy-Authorization line on every request through the
// proxy; an agent (named or one-time) whose line alone is over the header
// bound is refused, one within it is made.
func TestHeaderBytesLimitProxyCredentials(t *testing.T) {
	testutil.CheckLeaks(t)
	// "Proxy-Authorization: Basic <base64>\r\n" is 29 bytes and 4/3 of the
	// credentials: "u:" and 40 bytes make 85, "u:" and 60 make 113.
	g := startGateway(t, rpc.Options{Limits: limits.New(limits.Options{MaxHeaderBytes: 100})})
	ctx := testCtx(t)
	env := func(cred string) map[string]string {
		return map[string]string{"HTTP_PROXY": "http://" + cred + "@127.0.0.1:9"}
	}
	fits, long := "u:"+strings.Repeat("p", 40), "u:"+strings.Repeat("p", 60)

	_, err := g.agents.CreateAgent(ctx, &pb.CreateAgentRequest{Name: "long", Options: &pb.AgentOptions{ProxyEnv: env(long)}})
	wantLimit(t, err, limits.CodeHeadersTooLarge)
	if _, err := g.agents.CreateAgent(ctx, &pb.CreateAgentRequest{Name: "fits", Options: &pb.AgentOptions{ProxyEnv: env(fits)}}); err != nil {
		t.Fatalf("CreateAgent with credentials within the bound: %v", err)
	}
	_, err = g.req.Request(ctx, &pb.RequestRequest{Options: &pb.RequestOptions{Url: "http://example.test/",
		OneTimeAgent: &pb.AgentOptions{ProxyEnv: env(long)}}})
	wantLimit(t, err, limits.CodeHeadersTooLarge)
}
