package httpengine_test

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/httpgateway/httpgateway/internal/agentpool"
	"github.com/httpgateway/httpgateway/internal/httpengine"
	"github.com/httpgateway/httpgateway/internal/nodeerr"
	"github.com/httpgateway/httpgateway/internal/testutil"
)

// scriptedProxy is a forward proxy on loopback that answers every request
// itself with answer(request line), keeping the connection; it records
// each request line and counts connections.
type scriptedProxy struct {
	*testutil.Upstream
	conns atomic.Int32

	mu    sync.Mutex // guards lines
	lines []string
}

func newScriptedProxy(t *testing.T, answer func(line string) string) *scriptedProxy {
	p := &scriptedProxy{}
	p.Upstream = testutil.NewUpstream(t, func(c net.Conn) {
		p.conns.Add(1)
		br := bufio.NewReader(c)
		for {
			head, _, err := testutil.ReadRequest(br)
			if err != nil {
				return
			}
			line, _, _ := strings.Cut(head, "\r\n")
			p.mu.Lock()
			p.lines = append(p.lines, line)
			p.mu.Unlock()
			if _, err := io.WriteString(c, answer(line)); err != nil {
				return
			}
		}
	})
	return p
}

func (p *scriptedProxy) requestLines() []string {
	p.mu.Lock()
	defer p.mu.Unlock()
	return append([]string(nil), p.lines...)
}

func (p *scriptedProxy) env() map[string]string {
	return map[string]string{"HTTP_PROXY": "http://" + p.Addr}
}

const proxyOK = "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok"

// originChecks is a Deps.CheckName that records the origins it allowed.
type originChecks struct {
	mu    sync.Mutex
	asked []string // host:port
}

func (o *originChecks) check(_ context.Context, host string, port uint16) error {
	o.mu.Lock()
	defer o.mu.Unlock()
	o.asked = append(o.asked, net.JoinHostPort(host, strconv.Itoa(int(port))))
	return nil
}

func (o *originChecks) list() []string {
	o.mu.Lock()
	defer o.mu.Unlock()
	return append([]string(nil), o.asked...)
}

// authorityOf is the host:port (port 80 when none) that the request-target
// of an absolute-form request line names, as a proxy reads it.
func authorityOf(t *testing.T, line string) string {
	t.Helper()
	parts := strings.Split(line, " ")
	if len(parts) != 3 {
		t.Fatalf("request line %q", line)
	}
	u, err := url.Parse(parts[1])
	if err != nil || u.Host == "" {
		t.Fatalf("request-target of %q is not absolute-form: %v", line, err)
	}
	port := u.Port()
	if port == "" {
		port = "80"
	}
	return net.JoinHostPort(u.Hostname(), port)
}

// TestProxiedPathNamesCheckedOrigin: a request sent through a proxy in
// absolute-form carries "http://" + host[:port] + path, and the proxy goes
// where that names. A path that does not start with "/" could change the
// host ("@10.1.2.3/secret") or the port (":6379/x") after the egress
// check saw host and port: such paths throw ERR_INVALID_ARG_VALUE as in
// Node, before anything is checked or sent. The proxy only ever receives
// request-targets whose authority is the one CheckName was asked about.
func TestProxiedPathNamesCheckedOrigin(t *testing.T) {
	testutil.CheckLeaks(t)
	px := newScriptedProxy(t, func(string) string { return proxyOK })
	checks := &originChecks{}
	o := agentpool.DefaultOptions()
	o.KeepAlive = true
	o.ProxyEnv = px.env()
	a := newAgent(t, o, agentpool.Deps{CheckName: checks.check})

	sent := []struct {
		name   string
		method string
		port   int
		path   string
		want   string // the request line's request-target
	}{
		{name: "origin-form path", path: "/x", want: "http://allowed.test/x"},
		{name: "path that looks like an authority", path: "//10.1.2.3/x", want: "http://allowed.test//10.1.2.3/x"},
		{name: "origin with a port", port: 8080, path: "/p?q", want: "http://allowed.test:8080/p?q"},
		{name: "absolute URL of the origin", path: "http://allowed.test/abs", want: "http://allowed.test/abs"},
		{name: "absolute URL of the origin, other spelling", path: "HTTP://Allowed.Test:80/abs", want: "http://allowed.test/abs"},
		{name: "absolute URL of the origin, no path", port: 8080, path: "http://allowed.test:8080?q", want: "http://allowed.test:8080/?q"},
		{name: "OPTIONS * asks the proxy", method: "OPTIONS", path: "*", want: "*"},
	}
	for _, tt := range sent {
		t.Run(tt.name, func(t *testing.T) {
			before := len(px.requestLines())
			r := do(t, a, httpengine.Options{Method: tt.method, Host: "allowed.test", Port: tt.port, Path: tt.path}, nil)
			if r.status != 200 {
				t.Fatalf("status %d", r.status)
			}
			lines := px.requestLines()
			if len(lines) != before+1 {
				t.Fatalf("proxy got %v", lines[before:])
			}
			if got := strings.Split(lines[before], " ")[1]; got != tt.want {
				t.Fatalf("request-target %q, want %q", got, tt.want)
			}
		})
	}

	refused := []struct {
		name   string
		method string
		path   string
		msg    string
	}{
		{name: "userinfo smuggled through the path", path: "@10.1.2.3/secret",
			msg: "The argument 'options.path' must be in absolute-form or start with /. Received '@10.1.2.3/secret'"},
		{name: "port smuggled through the path", path: ":6379/x",
			msg: "The argument 'options.path' must be in absolute-form or start with /. Received ':6379/x'"},
		{name: "query right after the authority", path: "?x=1",
			msg: "must be in absolute-form or start with /"},
		{name: "absolute URL with userinfo", path: "http://allowed.test:pw@10.1.2.3/secret",
			msg: "The argument 'options.path' must not contain userinfo, use options.auth instead. Received 'http://10.1.2.3/secret'"},
		{name: "absolute URL of another port", path: "http://allowed.test:6379/x",
			msg: "must match the request authority (allowed.test)"},
		{name: "absolute URL of another host", path: "http://10.1.2.3/x",
			msg: "must match the request authority (allowed.test)"},
		{name: "absolute URL without slashes", path: "http:10.1.2.3/x",
			msg: "must match the request authority (allowed.test)"},
		{name: "another scheme", path: "localhost:6379/x",
			msg: "must use http: scheme when specified as an absolute URL. Received 'localhost:'"},
		{name: "CONNECT to an authority", method: "CONNECT", path: "10.1.2.3:22",
			msg: "must be in absolute-form or start with /"},
	}
	for _, tt := range refused {
		t.Run(tt.name, func(t *testing.T) {
			c, err := httpengine.Request(a, false, httpengine.Options{Method: tt.method, Host: "allowed.test", Path: tt.path}, 0)
			if err == nil {
				end(t, c)
				t.Fatalf("request with path %q was sent: events %s", tt.path, names(events(t, c)))
			}
			if nodeerr.Code(err) != nodeerr.ERR_INVALID_ARG_VALUE || !strings.Contains(err.Error(), tt.msg) {
				t.Fatalf("error %v, want ERR_INVALID_ARG_VALUE containing %q", err, tt.msg)
			}
		})
	}

	// The proxy saw the sent requests only, each naming an origin that was
	// checked first; a refused path was neither checked nor sent.
	lines, asked := px.requestLines(), checks.list()
	if len(lines) != len(sent) || len(asked) != len(sent) {
		t.Fatalf("proxy got %q after checks of %q; want %d of each", lines, asked, len(sent))
	}
	for i, line := range lines {
		if sent[i].want == "*" {
			continue
		}
		if got := authorityOf(t, line); got != asked[i] {
			t.Errorf("proxy got %q naming %s; the origin checked was %s", line, got, asked[i])
		}
	}
}

// proxiedCheckAgent is a keep-alive agent whose proxy is px and whose
// CheckName is check, with a DNS timeout long enough that only the
// request's end can stop a check.
func proxiedCheckAgent(t *testing.T, px *scriptedProxy, check func(context.Context, string, uint16) error) *agentpool.Agent {
	o := agentpool.DefaultOptions()
	o.KeepAlive = true
	o.ProxyEnv = px.env()
	return newAgent(t, o, agentpool.Deps{CheckName: check, DNSTimeout: time.Hour})
}

// requestReturning runs httpengine.Request on another goroutine and
// fails the test if it does not return while the origin check is blocked:
// the caller needs the request back to be able to cancel it.
func requestReturning(t *testing.T, a *agentpool.Agent, o httpengine.Options) *httpengine.ClientRequest {
	t.Helper()
	type res struct {
		c   *httpengine.ClientRequest
		err error
	}
	ch := make(chan res, 1)
	go func() {
		c, err := httpengine.Request(a, false, o, 0)
		ch <- res{c, err}
	}()
	select {
	case r := <-ch:
		if r.err != nil {
			t.Fatal(r.err)
		}
		return r.c
	case <-time.After(10 * time.Second):
		t.Fatal("Request blocked while the origin check runs")
		return nil
	}
}

func recvOrFail[T any](t *testing.T, ch <-chan T, what string) T {
	t.Helper()
	select {
	case v := <-ch:
		return v
	case <-time.After(10 * time.Second):
		t.Fatalf("timed out waiting for %s", what)
		panic("unreachable")
	}
}

// TestOriginCheckEndsWithRequest: the origin check of a proxied request
// runs off the caller's goroutine and belongs to the request. Destroying
// the request while CheckName is in progress cancels the context CheckName
// got; and when CheckName does not listen and allows the origin after the
// request ended, nothing is asked of the pool: no socket, no proxy dial.
func TestOriginCheckEndsWithRequest(t *testing.T) {
	testutil.CheckLeaks(t)
	px := newScriptedProxy(t, func(string) string { return proxyOK })
	checked := make(chan struct{}, 1)
	httpengine.SetOriginCheckedHook(t, func() { checked <- struct{}{} })
	stop := make(chan struct{}) // frees a CheckName that the engine failed to stop
	t.Cleanup(func() { close(stop) })

	tests := []struct {
		name string
		// check gets entered and release; it answers once the request is
		// gone (honouring ctx), or once release is closed (ignoring it).
		honoursCtx bool
	}{
		{name: "CheckName honours the context", honoursCtx: true},
		{name: "CheckName ignores the context and allows"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			entered := make(chan struct{})
			release := make(chan struct{})
			returned := make(chan error, 1)
			a := proxiedCheckAgent(t, px, func(ctx context.Context, _ string, _ uint16) error {
				close(entered)
				var err error
				if tt.honoursCtx {
					select {
					case <-ctx.Done():
						err = ctx.Err()
					case <-stop:
					}
				} else {
					select {
					case <-release:
					case <-stop:
					}
				}
				returned <- err
				return err
			})
			sub := a.Subscribe(64)
			c := requestReturning(t, a, httpengine.Options{Host: "slow.test", Path: "/x"})
			recvOrFail(t, entered, "CheckName")
			c.Destroy(nil)
			if got := names(events(t, c)); got != "req:error(ECONNRESET) req:close" {
				t.Fatalf("events %s", got)
			}
			if !tt.honoursCtx {
				close(release)
			}
			if err := recvOrFail(t, returned, "CheckName to return"); tt.honoursCtx && !errors.Is(err, context.Canceled) {
				t.Fatalf("CheckName's context ended with %v, want context.Canceled", err)
			}
			recvOrFail(t, checked, "the origin check goroutine")

			// Nothing reached the pool.
			if s := a.Snapshot(); s.TotalSockets != 0 || len(s.Names) != 0 {
				t.Fatalf("pool after the check: %+v", s)
			}
			select {
			case ev := <-sub.C():
				t.Fatalf("pool event %v after the request ended during its check", ev.Type)
			default:
			}
			if n := px.conns.Load(); n != 0 {
				t.Fatalf("the proxy got %d connections", n)
			}
		})
	}
}

// TestRedirectCheckOffSocketGoroutine: the next hop of a redirect starts
// on the goroutine that read the redirect, whose socket is already back in
// the pool and may serve another request by then. A slow check of the
// next hop's origin must not hold that socket: with one socket to the
// proxy, another request is answered on it while the check is blocked.
// The hop's origin is then denied, and the proxy never hears of it.
func TestRedirectCheckOffSocketGoroutine(t *testing.T) {
	testutil.CheckLeaks(t)
	// The 302 is sent only once the first request's 'finish' was seen: a
	// response read while the request's last write is still in flight
	// makes the engine give up the socket (it cannot tell whether the
	// write completed), and the test is about a socket that goes back to
	// the pool.
	finished := make(chan struct{})
	stop := make(chan struct{})
	t.Cleanup(func() { close(stop) })
	px := newScriptedProxy(t, func(line string) string {
		if strings.HasPrefix(line, "GET http://first.test/") {
			select {
			case <-finished:
			case <-stop:
			}
			return "HTTP/1.1 302 Found\r\nLocation: http://slow.test/next\r\nContent-Length: 0\r\n\r\n"
		}
		return proxyOK
	})
	entered := make(chan struct{})
	release := make(chan struct{})
	var once sync.Once
	t.Cleanup(func() { once.Do(func() { close(release) }) })
	errDenied := errors.New("slow.test is not allowed")
	o := agentpool.DefaultOptions()
	o.KeepAlive = true
	o.MaxSockets = 1
	o.ProxyEnv = px.env()
	a := newAgent(t, o, agentpool.Deps{DNSTimeout: time.Hour, CheckName: func(ctx context.Context, host string, _ uint16) error {
		if host != "slow.test" {
			return nil
		}
		close(entered)
		select {
		case <-release:
			return errDenied
		case <-ctx.Done():
			return ctx.Err()
		}
	}})

	first, err := httpengine.Request(a, false, httpengine.Options{Host: "first.test", Path: "/", Redirect: httpengine.RedirectFollow}, 0)
	if err != nil {
		t.Fatal(err)
	}
	end(t, first)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	for seq := uint64(1); ; seq++ {
		ev, err := first.Events().Next(ctx, seq)
		if err != nil {
			t.Fatalf("waiting for the first request's finish: %v", err)
		}
		if ev.Kind == httpengine.EventFinish {
			break
		}
	}
	close(finished)
	recvOrFail(t, entered, "the check of the redirect's origin")

	// The one socket to the proxy serves another request meanwhile.
	other, err := httpengine.Request(a, false, httpengine.Options{Host: "other.test", Path: "/"}, 0)
	if err != nil {
		t.Fatal(err)
	}
	end(t, other)
	r := collectResult(t, other)
	if r.status != 200 || string(r.body) != "ok" || !r.reused {
		t.Fatalf("other request: status %d body %q reused %v", r.status, r.body, r.reused)
	}

	once.Do(func() { close(release) })
	evs := events(t, first)
	last := evs[len(evs)-2]
	if last.Kind != httpengine.EventError || last.Err.Code != nodeerr.ERR_GATEWAY_EGRESS_DENIED || !errors.Is(last.Err, errDenied) {
		t.Fatalf("first request: events %s, want the hop denied", names(evs))
	}
	want := []string{"GET http://first.test/ HTTP/1.1", "GET http://other.test/ HTTP/1.1"}
	if got := px.requestLines(); fmt.Sprint(got) != fmt.Sprint(want) {
		t.Fatalf("proxy got %q, want %q", got, want)
	}
}

// TestProxiedAbsolutePathRedirect: a relative Location resolves against
// the URL the proxy was asked for, also when the path was given as an
// absolute URL, and the next hop is checked and sent like the first.
func TestProxiedAbsolutePathRedirect(t *testing.T) {
	testutil.CheckLeaks(t)
	px := newScriptedProxy(t, func(line string) string {
		if strings.HasPrefix(line, "GET http://allowed.test/dir/abs ") {
			return "HTTP/1.1 302 Found\r\nLocation: next?q\r\nContent-Length: 0\r\n\r\n"
		}
		return proxyOK
	})
	checks := &originChecks{}
	o := agentpool.DefaultOptions()
	o.KeepAlive = true
	o.ProxyEnv = px.env()
	a := newAgent(t, o, agentpool.Deps{CheckName: checks.check})
	r := do(t, a, httpengine.Options{Host: "allowed.test", Path: "http://allowed.test/dir/abs", Redirect: httpengine.RedirectFollow}, nil)
	if r.status != 200 {
		t.Fatalf("status %d", r.status)
	}
	want := []string{"GET http://allowed.test/dir/abs HTTP/1.1", "GET http://allowed.test/dir/next?q HTTP/1.1"}
	if got := px.requestLines(); fmt.Sprint(got) != fmt.Sprint(want) {
		t.Fatalf("proxy got %q, want %q", got, want)
	}
	if got := checks.list(); len(got) != 2 || got[0] != "allowed.test:80" || got[1] != "allowed.test:80" {
		t.Fatalf("CheckName asked %q, want the origin once per hop", got)
	}
}

// TestStaleAcquireKeepsNewerWant: the goroutine that asked the pool for
// the first attempt's socket may take the request's lock only after the
// redirect's next hop queued its own want; it must not store its (used)
// want over the hop's, or tearing the request down would leave the hop's
// want queued in the pool.
func TestStaleAcquireKeepsNewerWant(t *testing.T) {
	testutil.CheckLeaks(t)
	stop := make(chan struct{})
	send302, otherGate := make(chan struct{}), make(chan struct{})
	px := newScriptedProxy(t, func(line string) string {
		switch {
		case strings.HasPrefix(line, "GET http://first.test/"):
			select {
			case <-send302:
			case <-stop:
			}
			return "HTTP/1.1 302 Found\r\nLocation: http://second.test/\r\nContent-Length: 0\r\n\r\n"
		case strings.HasPrefix(line, "GET http://other.test/"):
			select {
			case <-otherGate:
			case <-stop:
			}
		}
		return proxyOK
	})
	t.Cleanup(func() { close(stop) }) // before the proxy's cleanup: frees its handlers
	o := agentpool.DefaultOptions()
	o.KeepAlive = true
	o.MaxSockets = 1
	o.ProxyEnv = px.env()
	a := newAgent(t, o, agentpool.Deps{CheckName: func(context.Context, string, uint16) error { return nil }})

	var calls atomic.Int32
	firstHeld, releaseFirst := make(chan struct{}), make(chan struct{})
	httpengine.SetAcquiredHook(t, func() {
		if calls.Add(1) == 1 { // the first attempt's goroutine
			close(firstHeld)
			select {
			case <-releaseFirst:
			case <-stop:
			}
		}
	})
	checked := make(chan struct{}, 8)
	httpengine.SetOriginCheckedHook(t, func() { checked <- struct{}{} })

	first, err := httpengine.Request(a, false, httpengine.Options{Host: "first.test", Path: "/", Redirect: httpengine.RedirectFollow}, 0)
	if err != nil {
		t.Fatal(err)
	}
	end(t, first)
	recvOrFail(t, firstHeld, "the first attempt's Acquire")
	other, err := httpengine.Request(a, false, httpengine.Options{Host: "other.test", Path: "/"}, 0)
	if err != nil {
		t.Fatal(err)
	}
	end(t, other)
	recvOrFail(t, checked, "other's want queued")
	close(send302) // the socket goes to other; the next hop queues behind it
	recvOrFail(t, checked, "the next hop's want queued")
	close(releaseFirst)
	recvOrFail(t, checked, "the first attempt's goroutine done")

	first.Destroy(nil)
	snap := a.Snapshot()
	for _, n := range snap.Names {
		if n.Requests != 0 {
			t.Errorf("pool %s: %d requests still queued after the request was destroyed", n.Name, n.Requests)
		}
	}
	close(otherGate)
	if r := collectResult(t, other); r.status != 200 {
		t.Fatalf("other request: status %d", r.status)
	}
	events(t, first) // to its 'close'
}
