package agentpool_test

import (
	"bufio"
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"net"
	"net/netip"
	"net/textproto"
	"net/url"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"

	"github.com/httpgateway/httpgateway/internal/agentpool"
	"github.com/httpgateway/httpgateway/internal/nodeerr"
	"github.com/httpgateway/httpgateway/internal/testutil"
)

// ---- helpers ----

// recorder is an upstream handler that keeps each request's head, to tell
// a request squid forwarded (it adds Via) from a direct one.
type recorder struct {
	mu   sync.Mutex
	reqs []request
}

func (r *recorder) handler() handler {
	return func(w *bufio.Writer, req request) bool {
		r.mu.Lock()
		r.reqs = append(r.reqs, req)
		r.mu.Unlock()
		respond(w)
		return true
	}
}

func (r *recorder) last(t *testing.T) request {
	t.Helper()
	r.mu.Lock()
	defer r.mu.Unlock()
	if len(r.reqs) == 0 {
		t.Fatal("upstream saw no request")
	}
	return r.reqs[len(r.reqs)-1]
}

func mustURL(t *testing.T, raw string) *url.URL {
	t.Helper()
	u, err := url.Parse(raw)
	if err != nil {
		t.Fatal(err)
	}
	return u
}

func withCreds(t *testing.T, raw, user, pass string) *url.URL {
	u := mustURL(t, raw)
	u.User = url.UserPassword(user, pass)
	return u
}

// absoluteExchange is the engine's request through an http proxy:
// absolute-form request-target, Host of the origin, Proxy-Authorization
// from the proxy URL's credentials.
func absoluteExchange(tg agentpool.Target, path string) *exchange {
	hp := net.JoinHostPort(tg.Host, strconv.Itoa(tg.Port))
	x := newExchange("http://"+hp+path, autoRelease)
	x.host = hp
	if auth := agentpool.ProxyAuthorization(tg.Proxy); auth != "" {
		x.headers = append(x.headers, "Proxy-Authorization: "+auth)
	}
	return x
}

func run(t *testing.T, a *agentpool.Agent, tg agentpool.Target, x *exchange) result {
	t.Helper()
	a.Acquire(tg, x)
	return recv(t, x.resultCh, "result")
}

func proxyEnvAgent(t *testing.T, env map[string]string, deps agentpool.Deps) *agentpool.Agent {
	t.Helper()
	o := keepAliveOptions()
	o.ProxyEnv = env
	return newAgent(t, o, deps)
}

// ---- no proxy process needed ----

func TestProxyOptions(t *testing.T) {
	tests := []struct {
		name string
		env  map[string]string
		code string
	}{
		{"none", nil, ""},
		{"good", map[string]string{"HTTP_PROXY": "http://u:p@127.0.0.1:3128", "https_proxy": "https://127.0.0.1:3129", "NO_PROXY": "*"}, ""},
		{"socks", map[string]string{"HTTPS_PROXY": "socks5://127.0.0.1:1080"}, nodeerr.ERR_INVALID_ARG_VALUE},
		{"unparsable", map[string]string{"HTTP_PROXY": "http://[::1"}, nodeerr.ERR_INVALID_URL},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			o := agentpool.DefaultOptions()
			o.ProxyEnv = tt.env
			err := o.Validate()
			if got := nodeerr.Code(err); got != tt.code {
				t.Fatalf("Validate: %v (code %q), want %q", err, got, tt.code)
			}
			_, err = agentpool.New("x", o, agentpool.Deps{})
			if got := nodeerr.Code(err); got != tt.code {
				t.Fatalf("New: %v (code %q), want %q", err, got, tt.code)
			}
		})
	}
}

func TestProxyForAndNames(t *testing.T) {
	a := proxyEnvAgent(t, map[string]string{
		"HTTP_PROXY": "http://alice:hunter2@127.0.0.1:3128", "HTTPS_PROXY": "http://127.0.0.1:3129",
		"NO_PROXY": "direct.test, .internal.test",
	}, agentpool.Deps{})
	tests := []struct {
		name      string
		target    agentpool.Target
		wantProxy string
		wantRule  string
		wantName  string
	}{
		{name: "http proxied, pooled per proxy",
			target:    agentpool.Target{Protocol: "http:", Host: "example.test", Port: 80},
			wantProxy: "http://alice:hunter2@127.0.0.1:3128",
			wantName:  "127.0.0.1:3128::proxy=http://alice:xxxxx@127.0.0.1:3128"},
		{name: "https proxied, pooled per origin and proxy",
			target:    agentpool.Target{Protocol: "https:", Host: "example.test", Port: 443},
			wantProxy: "http://127.0.0.1:3129",
			wantName:  "example.test:443:" + strings.Repeat(":", 20) + ":proxy=http://127.0.0.1:3129"},
		{name: "exact bypass", target: agentpool.Target{Protocol: "http:", Host: "direct.test", Port: 80},
			wantRule: "direct.test", wantName: "direct.test:80:"},
		{name: "suffix bypass", target: agentpool.Target{Protocol: "https:", Host: "a.internal.test", Port: 443},
			wantRule: ".internal.test", wantName: "a.internal.test:443:" + strings.Repeat(":", 20)},
		{name: "unix socket ignores proxies", target: agentpool.Target{Protocol: "http:", Host: "example.test", SocketPath: "/tmp/x.sock"},
			wantName: "example.test:::/tmp/x.sock"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			d := a.ProxyFor(tt.target)
			got := ""
			if d.URL != nil {
				got = d.URL.String()
			}
			if got != tt.wantProxy || d.Rule != tt.wantRule {
				t.Fatalf("ProxyFor = %q, %q; want %q, %q", got, d.Rule, tt.wantProxy, tt.wantRule)
			}
			tg := tt.target
			tg.Proxy = d.URL
			if name := a.GetName(tg); name != tt.wantName {
				t.Fatalf("GetName = %q, want %q", name, tt.wantName)
			}
		})
	}
	if env := a.Snapshot().Options.ProxyEnv; env["HTTP_PROXY"] != "http://alice:xxxxx@127.0.0.1:3128" || env["NO_PROXY"] != "direct.test, .internal.test" {
		t.Fatalf("snapshot ProxyEnv %v", env)
	}
	// The URL is the caller's copy.
	d := a.ProxyFor(agentpool.Target{Protocol: "http:", Host: "example.test", Port: 80})
	d.URL.Host = "changed:1"
	if d2 := a.ProxyFor(agentpool.Target{Protocol: "http:", Host: "example.test", Port: 80}); d2.URL.Host != "127.0.0.1:3128" {
		t.Fatal("ProxyFor returned the agent's own URL")
	}
	if got := agentpool.ProxyAuthorization(mustURL(t, "http://alice:hunter2@p")); got != "Basic YWxpY2U6aHVudGVyMg==" {
		t.Fatalf("ProxyAuthorization = %q", got)
	}
}

func TestProxyTargetValidation(t *testing.T) {
	testutil.CheckLeaks(t)
	a := newAgent(t, keepAliveOptions(), agentpool.Deps{})
	for name, tg := range map[string]agentpool.Target{
		"socks proxy": {Protocol: "https:", Host: "127.0.0.1", Port: 1, Proxy: mustURL(t, "socks5://127.0.0.1:1080")},
		"CRLF in ProxyAuth": {Protocol: "https:", Host: "127.0.0.1", Port: 1, Proxy: mustURL(t, "http://127.0.0.1:1"),
			ProxyAuth: "Basic x\r\nX-Evil: 1"},
	} {
		x := newExchange("/", autoRelease)
		a.Acquire(tg, x)
		if ev := recv(t, x.socketCh, "socket"); ev.s != nil || nodeerr.As(ev.err) == nil {
			t.Fatalf("%s: OnSocket(%v, %v), want a node error", name, ev.s, ev.err)
		}
	}
}

func TestParseProxyAuthenticate(t *testing.T) {
	tests := []struct {
		values       []string
		scheme, real string
	}{
		{[]string{`Basic realm="Squid proxy"`}, "basic", "Squid proxy"},
		{[]string{`Negotiate`, `Basic realm="r, with comma"`}, "basic", "r, with comma"},
		{[]string{`Negotiate abc==, Basic realm=plain, charset="UTF-8"`}, "basic", "plain"},
		{[]string{`Digest realm="d\"q", nonce="n", qop="auth"`}, "digest", `d"q`},
		{[]string{`NTLM`}, "ntlm", ""},
		{nil, "", ""},
	}
	for _, tt := range tests {
		s, r := agentpool.ParseProxyAuthenticate(tt.values)
		if s != tt.scheme || r != tt.real {
			t.Errorf("ParseProxyAuthenticate(%q) = %q, %q; want %q, %q", tt.values, s, r, tt.scheme, tt.real)
		}
	}
}

// fakeProxy answers every connection with script after reading the
// CONNECT head; heads it read go to heads.
func fakeProxy(t *testing.T, heads chan<- string, answer string) *testutil.Upstream {
	return testutil.NewUpstream(t, func(c net.Conn) {
		br := bufio.NewReader(c)
		head, _, err := testutil.ReadRequest(br)
		if err != nil {
			return
		}
		if heads != nil {
			heads <- head
		}
		_, _ = io.WriteString(c, answer)
		_, _ = io.Copy(io.Discard, br) // until the client closes
	})
}

func TestProxyConnectFailures(t *testing.T) {
	tests := []struct {
		name    string
		answer  string
		code    string
		message string
		check   func(t *testing.T, err error)
	}{
		{name: "403", answer: "HTTP/1.1 403 Forbidden\r\nContent-Length: 0\r\n\r\n",
			code: nodeerr.ERR_GATEWAY_PROXY_CONNECT_FAILED, message: "403 Forbidden"},
		{name: "407 with challenges", code: nodeerr.ERR_GATEWAY_PROXY_AUTH_REQUIRED,
			answer: "HTTP/1.1 407 Proxy Authentication Required\r\nProxy-Authenticate: Negotiate\r\nProxy-Authenticate: Basic realm=\"corp, inc\"\r\nContent-Length: 0\r\n\r\n",
			check: func(t *testing.T, err error) {
				var pe *agentpool.ProxyAuthError
				if !errors.As(err, &pe) || pe.Scheme != "basic" || pe.Realm != "corp, inc" || pe.StatusCode != 407 || pe.CredentialsSent {
					t.Fatalf("error %#v", err)
				}
			}},
		{name: "bad status line", answer: "HTTP/1.1 2000 OK\r\n\r\n", code: nodeerr.ERR_GATEWAY_PROXY_INVALID_RESPONSE},
		{name: "not http", answer: "SSH-2.0-OpenSSH\r\n\r\n", code: nodeerr.ERR_GATEWAY_PROXY_INVALID_RESPONSE},
		{name: "bare LF", answer: "HTTP/1.1 200 OK\n\n", code: nodeerr.ERR_GATEWAY_PROXY_INVALID_RESPONSE},
		{name: "folded header", answer: "HTTP/1.1 200 OK\r\nX: a\r\n b\r\n\r\n", code: nodeerr.ERR_GATEWAY_PROXY_INVALID_RESPONSE},
		{name: "head too large", answer: "HTTP/1.1 200 OK\r\n" + strings.Repeat("X-Pad: "+strings.Repeat("a", 1000)+"\r\n", 20) + "\r\n",
			code: nodeerr.ERR_GATEWAY_PROXY_INVALID_RESPONSE, message: "too large"},
		{name: "bytes after 200", answer: "HTTP/1.1 200 Connection established\r\n\r\nhello", code: nodeerr.ERR_GATEWAY_PROXY_INVALID_RESPONSE},
		{name: "closed before answering", answer: "HTTP/1.1 200", code: nodeerr.ECONNRESET},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			testutil.CheckLeaks(t)
			heads := make(chan string, 1)
			px := fakeProxy(t, heads, tt.answer)
			if tt.name == "closed before answering" {
				px = testutil.NewUpstream(t, func(c net.Conn) {
					_, _, _ = testutil.ReadRequest(bufio.NewReader(c))
					_, _ = io.WriteString(c, tt.answer)
				})
			}
			var checked []string
			var mu sync.Mutex
			a := newAgent(t, keepAliveOptions(), agentpool.Deps{Check: func(_ context.Context, host string, ap netip.AddrPort) error {
				mu.Lock()
				checked = append(checked, fmt.Sprintf("%s %s", host, ap))
				mu.Unlock()
				return nil
			}})
			tg := agentpool.Target{Protocol: "https:", Host: "origin.test", Port: 8443, Proxy: mustURL(t, fmt.Sprintf("http://127.0.0.1:%d", px.Port))}
			x := newExchange("/", autoRelease)
			a.Acquire(tg, x)
			recv(t, x.socketCh, "socket")
			err := recv(t, x.connectCh, "connect")
			if got := nodeerr.Code(err); got != tt.code {
				t.Fatalf("error %v: code %q, want %q", err, got, tt.code)
			}
			if !strings.Contains(err.Error(), tt.message) {
				t.Fatalf("error %q does not contain %q", err, tt.message)
			}
			if tt.check != nil {
				tt.check(t, err)
			}
			if tt.name != "closed before answering" {
				head := recv(t, heads, "CONNECT head")
				if !strings.HasPrefix(head, "CONNECT origin.test:8443 HTTP/1.1\r\nHost: origin.test:8443\r\n") || strings.Contains(head, "Proxy-Authorization") {
					t.Fatalf("CONNECT head %q", head)
				}
			}
			mu.Lock()
			if want := fmt.Sprintf("127.0.0.1 127.0.0.1:%d", px.Port); len(checked) != 1 || checked[0] != want {
				t.Fatalf("egress checked %v, want the proxy address %q", checked, want)
			}
			mu.Unlock()
			if s := a.Snapshot(); s.TotalSockets != 0 {
				t.Fatalf("failed socket left in pool: %+v", s)
			}
		})
	}
}

// tlsProxy is an https proxy written for the test: TLS, then either a
// CONNECT it tunnels to a loopback port, or an absolute-form GET it
// answers itself (recording the request-target).
func tlsProxy(t *testing.T, cert tls.Certificate, targets chan<- string) *testutil.Upstream {
	cfg := &tls.Config{Certificates: []tls.Certificate{cert}}
	return testutil.NewUpstream(t, func(raw net.Conn) {
		c := tls.Server(raw, cfg)
		br := bufio.NewReader(c)
		for {
			tp := textproto.NewReader(br)
			line, err := tp.ReadLine()
			if err != nil {
				return
			}
			if _, err := tp.ReadMIMEHeader(); err != nil {
				return
			}
			f := strings.Fields(line)
			if len(f) != 3 {
				return
			}
			targets <- f[0] + " " + f[1]
			if f[0] != "CONNECT" {
				_, _ = io.WriteString(c, "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok")
				continue
			}
			host, _, _ := net.SplitHostPort(f[1])
			if host != "127.0.0.1" {
				_, _ = io.WriteString(c, "HTTP/1.1 403 Forbidden\r\n\r\n")
				return
			}
			up, err := net.Dial("tcp", f[1])
			if err != nil {
				_, _ = io.WriteString(c, "HTTP/1.1 502 Bad Gateway\r\n\r\n")
				return
			}
			_, _ = io.WriteString(c, "HTTP/1.1 200 Connection established\r\n\r\n")
			done := make(chan struct{})
			go func() { // ends when either side closes
				_, _ = io.Copy(up, br)
				_ = up.Close()
				close(done)
			}()
			_, _ = io.Copy(c, up)
			_ = c.Close()
			<-done
			return
		}
	})
}

// TestHTTPSProxy: a proxy URL with the https scheme, verified with the
// request's CA, carries absolute-form requests and CONNECT tunnels.
func TestHTTPSProxy(t *testing.T) {
	testutil.CheckLeaks(t)
	pki := newPKI(t)
	targets := make(chan string, 8)
	px := tlsProxy(t, pki.good, targets)
	proxy := mustURL(t, fmt.Sprintf("https://127.0.0.1:%d", px.Port))
	o := keepAliveOptions()
	o.TLS = &agentpool.TLSOptions{CA: pki.caPEM}
	a := newAgent(t, o, agentpool.Deps{})

	// http target: absolute-form over TLS to the proxy.
	tg := agentpool.Target{Protocol: "http:", Host: "127.0.0.1", Port: 9, Proxy: proxy}
	x := absoluteExchange(tg, "/abs")
	if r := run(t, a, tg, x); r.err != nil || r.body != "ok" {
		t.Fatalf("http via https proxy: %+v", r)
	}
	if got := recv(t, targets, "request-target"); got != "GET http://127.0.0.1:9/abs" {
		t.Fatalf("proxy saw %q", got)
	}
	info := x.socket().Info()
	if !info.ViaProxy || info.ProxyTLS == nil || info.TLS != nil || info.RemotePort != px.Port || info.Proxy != proxy.String() {
		t.Fatalf("socket info %+v", info)
	}

	// https target: CONNECT through the TLS connection, TLS to the origin inside.
	up := startTLS(t, pki.good)
	tg = agentpool.Target{Protocol: "https:", Host: "127.0.0.1", Port: up.port, Proxy: proxy}
	x = newExchange("/", autoRelease)
	if r := run(t, a, tg, x); r.err != nil || r.body != "ok" {
		t.Fatalf("https via https proxy: %+v", r)
	}
	if got := recv(t, targets, "CONNECT"); got != fmt.Sprintf("CONNECT 127.0.0.1:%d", up.port) {
		t.Fatalf("proxy saw %q", got)
	}
	info = x.socket().Info()
	if !info.ViaProxy || info.ProxyTLS == nil || info.TLS == nil || !strings.Contains(info.TLS.PeerSubject, "CN=127.0.0.1") {
		t.Fatalf("socket info %+v", info)
	}

	// The proxy's certificate is verified.
	b := newAgent(t, keepAliveOptions(), agentpool.Deps{})
	x = newExchange("/", autoRelease)
	r := run(t, b, agentpool.Target{Protocol: "http:", Host: "127.0.0.1", Port: 9, Proxy: proxy}, x)
	if got := nodeerr.Code(r.err); got != nodeerr.UNABLE_TO_VERIFY_LEAF_SIGNATURE {
		t.Fatalf("untrusted proxy: %v (code %q)", r.err, got)
	}
}

func TestUnixSocketIgnoresProxy(t *testing.T) {
	testutil.CheckLeaks(t)
	path := filepath.Join(t.TempDir(), "up.sock")
	ln, err := net.Listen("unix", path)
	if err != nil {
		t.Fatal(err)
	}
	startUpstream(t, ln, okHandler())
	a := proxyEnvAgent(t, map[string]string{"HTTP_PROXY": "http://127.0.0.1:1"}, agentpool.Deps{})
	tg := agentpool.Target{Protocol: "http:", Host: "localhost", SocketPath: path}
	if d := a.ProxyFor(tg); d.URL != nil || d.Rule != "" {
		t.Fatalf("ProxyFor(unix) = %+v", d)
	}
	// Even a proxy set by mistake is ignored for a unix socket.
	tg.Proxy = mustURL(t, "http://127.0.0.1:1")
	x, r := do(t, a, tg, autoRelease)
	if r.err != nil || r.body != "ok" {
		t.Fatalf("%+v", r)
	}
	if info := x.socket().Info(); info.ViaProxy || info.RemoteAddress != path {
		t.Fatalf("info %+v", info)
	}
}

// ---- against a real squid ----

// TestSquid runs requests through Debian's squid: http targets in
// absolute-form on pooled proxy connections, https targets through
// CONNECT, and every NO_PROXY form going direct.
func TestSquid(t *testing.T) {
	testutil.CheckLeaks(t)
	sq := testutil.StartSquidProxy(t, testutil.SquidOptions{})

	t.Run("http absolute-form, pooled per proxy", func(t *testing.T) {
		testutil.CheckLeaks(t)
		var rec1, rec2 recorder
		up1, up2 := startHTTP(t, rec1.handler()), startHTTP(t, rec2.handler())
		a := proxyEnvAgent(t, map[string]string{"HTTP_PROXY": sq.URL}, agentpool.Deps{})
		sub := a.Subscribe(64)
		tg := target(up1.port)
		d := a.ProxyFor(tg)
		if d.URL == nil || d.URL.String() != sq.URL {
			t.Fatalf("ProxyFor = %+v", d)
		}
		tg.Proxy = d.URL
		x := absoluteExchange(tg, "/first")
		if r := run(t, a, tg, x); r.err != nil || r.status != 200 || r.body != "ok" || r.reused {
			t.Fatalf("first: %+v", r)
		}
		req := rec1.last(t)
		if req.Path != "/first" || !strings.Contains(req.Header.Get("Via"), "squid") {
			t.Fatalf("upstream saw %s %s Via=%q: not forwarded by squid", req.Method, req.Path, req.Header.Get("Via"))
		}
		info := x.socket().Info()
		if !info.ViaProxy || info.Proxy != sq.URL || info.RemotePort != sq.Port || info.ProxyRule != "" {
			t.Fatalf("socket info %+v", info)
		}
		if ev := waitEvent(t, sub, isType(agentpool.EventSocketAssigned)); ev.Proxy != sq.URL {
			t.Fatalf("assigned event %+v", ev)
		}
		waitEvent(t, sub, isType(agentpool.EventSocketFreed))

		// The same proxy connection serves another origin.
		tg2 := target(up2.port)
		tg2.Proxy = a.ProxyFor(tg2).URL
		if a.GetName(tg2) != a.GetName(tg) {
			t.Fatalf("names differ: %q, %q", a.GetName(tg2), a.GetName(tg))
		}
		x2 := absoluteExchange(tg2, "/second")
		if r := run(t, a, tg2, x2); r.err != nil || r.body != "ok" || !r.reused {
			t.Fatalf("second: %+v", r)
		}
		if x2.socket() != x.socket() {
			t.Fatal("second request did not reuse the proxy connection")
		}
		if req := rec2.last(t); req.Path != "/second" || req.Header.Get("Via") == "" {
			t.Fatalf("second upstream saw %+v", req)
		}
	})

	t.Run("https CONNECT to a TLS origin, tunnel reused", func(t *testing.T) {
		testutil.CheckLeaks(t)
		pki := newPKI(t)
		up := startTLS(t, pki.good)
		a := proxyEnvAgent(t, map[string]string{"HTTPS_PROXY": sq.URL}, agentpool.Deps{})
		sub := a.Subscribe(64)
		tg := agentpool.Target{Protocol: "https:", Host: "127.0.0.1", Port: up.port, TLS: &agentpool.TLSOptions{CA: pki.caPEM}}
		tg.Proxy = a.ProxyFor(tg).URL
		if tg.Proxy == nil {
			t.Fatal("https target not proxied")
		}
		x := newExchange("/", autoRelease)
		if r := run(t, a, tg, x); r.err != nil || r.body != "ok" || r.reused {
			t.Fatalf("first: %+v", r)
		}
		info := x.socket().Info()
		if !info.ViaProxy || info.RemotePort != sq.Port || info.TLS == nil || !strings.Contains(info.TLS.PeerSubject, "CN=127.0.0.1") {
			t.Fatalf("socket info %+v", info)
		}
		waitEvent(t, sub, isType(agentpool.EventSocketFreed))
		x2 := newExchange("/", autoRelease)
		if r := run(t, a, tg, x2); r.err != nil || !r.reused || x2.socket() != x.socket() {
			t.Fatalf("second: %+v", r)
		}
		want := fmt.Sprintf("CONNECT 127.0.0.1:%d", up.port)
		// Squid logs a tunnel when it ends: close it first.
		a.Destroy()
		if !pollUntil(waitLimit, func() bool { return strings.Contains(sq.AccessLog(), want) }) {
			t.Fatalf("squid's access log has no %q:\n%s", want, sq.AccessLog())
		}
		if n := up.accepts(); n != 1 {
			t.Fatalf("origin accepted %d connections, want 1", n)
		}
	})

	t.Run("NO_PROXY forms go direct", func(t *testing.T) {
		loop := netip.MustParseAddr("127.0.0.1")
		resolver := fakeResolver{answers: map[string][]netip.Addr{
			"svc.test": {loop}, "a.svc.test": {loop}, "other.test": {loop},
		}}
		tests := []struct {
			name, noProxy, host, rule string
		}{
			{"star", "other.test,*", "svc.test", "*"},
			{"exact host", "svc.test", "svc.test", "svc.test"},
			{"suffix", ".svc.test", "a.svc.test", ".svc.test"},
			{"wildcard", "*.svc.test", "a.svc.test", "*.svc.test"},
			{"IP", "127.0.0.1", "127.0.0.1", "127.0.0.1"},
			{"IP range", "127.0.0.0-127.0.0.9", "127.0.0.1", "127.0.0.0-127.0.0.9"},
			{"host:port", "svc.test:PORT", "svc.test", "svc.test:PORT"},
			{"IP:port", "127.0.0.1:PORT", "127.0.0.1", "127.0.0.1:PORT"},
			{"CIDR", "127.0.0.0/8", "127.0.0.1", "127.0.0.0/8"},
			{"no match: proxied", "127.0.0.2,svc.test:1,.other.test", "127.0.0.1", ""},
		}
		for _, tt := range tests {
			t.Run(tt.name, func(t *testing.T) {
				testutil.CheckLeaks(t)
				// Per subtest: squid keeps its connection to the origin
				// open until the origin closes it.
				var rec recorder
				up := startHTTP(t, rec.handler())
				port := strconv.Itoa(up.port)
				tt.noProxy = strings.ReplaceAll(tt.noProxy, "PORT", port)
				tt.rule = strings.ReplaceAll(tt.rule, "PORT", port)
				a := proxyEnvAgent(t, map[string]string{"HTTP_PROXY": sq.URL, "NO_PROXY": tt.noProxy}, agentpool.Deps{Resolver: resolver})
				tg := agentpool.Target{Protocol: "http:", Host: tt.host, Port: up.port}
				d := a.ProxyFor(tg)
				if d.Rule != tt.rule || (d.URL == nil) != (tt.rule != "") {
					t.Fatalf("ProxyFor = %+v, want rule %q", d, tt.rule)
				}
				tg.Proxy = d.URL
				x := newExchange("/direct", autoRelease)
				if d.URL != nil {
					x = absoluteExchange(tg, "/direct")
				}
				if r := run(t, a, tg, x); r.err != nil || r.body != "ok" {
					t.Fatalf("%+v", r)
				}
				info := x.socket().Info()
				via := rec.last(t).Header.Get("Via")
				if tt.rule == "" {
					if !info.ViaProxy || info.RemotePort != sq.Port || via == "" {
						t.Fatalf("not proxied: info %+v, Via %q", info, via)
					}
					return
				}
				if info.ViaProxy || info.Proxy != "" || info.ProxyRule != tt.rule || info.RemotePort != up.port || via != "" {
					t.Fatalf("not direct: info %+v, Via %q", info, via)
				}
			})
		}
	})
}

// TestSquidLogin: CONNECT through a squid that requires Basic auth fails
// with a ProxyAuthError (the engine's login event), and succeeds with the
// login's answer in Target.ProxyAuth or credentials in the proxy URL;
// absolute-form requests get squid's 407 as a response.
func TestSquidLogin(t *testing.T) {
	testutil.CheckLeaks(t)
	sq := testutil.StartSquidProxy(t, testutil.SquidOptions{BasicAuth: map[string]string{"alice": "s3cret pw"}})
	pki := newPKI(t)
	up := startTLS(t, pki.good)
	tlsOpts := &agentpool.TLSOptions{CA: pki.caPEM}

	t.Run("CONNECT 407 then login", func(t *testing.T) {
		testutil.CheckLeaks(t)
		a := proxyEnvAgent(t, map[string]string{"HTTPS_PROXY": sq.URL}, agentpool.Deps{})
		tg := agentpool.Target{Protocol: "https:", Host: "127.0.0.1", Port: up.port, TLS: tlsOpts}
		tg.Proxy = a.ProxyFor(tg).URL

		x := newExchange("/", autoRelease)
		r := run(t, a, tg, x)
		var pe *agentpool.ProxyAuthError
		if !errors.As(r.err, &pe) {
			t.Fatalf("error %v, want a ProxyAuthError", r.err)
		}
		if pe.Scheme != "basic" || pe.Realm != testutil.DefaultSquidRealm || pe.Host != "127.0.0.1" || pe.Port != sq.Port || pe.StatusCode != 407 || pe.CredentialsSent {
			t.Fatalf("ProxyAuthError %+v", pe)
		}
		if nodeerr.Code(r.err) != nodeerr.ERR_GATEWAY_PROXY_AUTH_REQUIRED || nodeerr.As(r.err) == nil {
			t.Fatalf("code %q", nodeerr.Code(r.err))
		}
		if s := a.Snapshot(); s.TotalSockets != 0 {
			t.Fatalf("failed socket left in pool: %+v", s)
		}

		// Wrong password: the proxy rejects the credentials.
		bad := tg
		bad.ProxyAuth = agentpool.BasicAuthorization("alice", "wrong")
		r = run(t, a, bad, newExchange("/", autoRelease))
		if !errors.As(r.err, &pe) || !pe.CredentialsSent {
			t.Fatalf("wrong password: %v", r.err)
		}

		// The login's answer.
		good := tg
		good.ProxyAuth = agentpool.BasicAuthorization("alice", "s3cret pw")
		x = newExchange("/", autoRelease)
		if r := run(t, a, good, x); r.err != nil || r.body != "ok" {
			t.Fatalf("after login: %+v", r)
		}
		if info := x.socket().Info(); !info.ViaProxy || info.TLS == nil {
			t.Fatalf("info %+v", info)
		}
	})

	t.Run("CONNECT with credentials in the proxy URL", func(t *testing.T) {
		testutil.CheckLeaks(t)
		a := proxyEnvAgent(t, map[string]string{"HTTPS_PROXY": withCreds(t, sq.URL, "alice", "s3cret pw").String()}, agentpool.Deps{})
		tg := agentpool.Target{Protocol: "https:", Host: "127.0.0.1", Port: up.port, TLS: tlsOpts}
		tg.Proxy = a.ProxyFor(tg).URL
		if name := a.GetName(tg); strings.Contains(name, "s3cret") || !strings.Contains(name, "alice:xxxxx@") {
			t.Fatalf("name %q", name)
		}
		x := newExchange("/", autoRelease)
		if r := run(t, a, tg, x); r.err != nil || r.body != "ok" {
			t.Fatalf("%+v", r)
		}
		if info := x.socket().Info(); strings.Contains(info.Proxy, "alice") {
			t.Fatalf("SocketInfo.Proxy shows credentials: %q", info.Proxy)
		}
	})

	t.Run("absolute-form 407 then Proxy-Authorization", func(t *testing.T) {
		testutil.CheckLeaks(t)
		var rec recorder
		hup := startHTTP(t, rec.handler())
		a := proxyEnvAgent(t, map[string]string{"HTTP_PROXY": sq.URL}, agentpool.Deps{})
		tg := target(hup.port)
		tg.Proxy = a.ProxyFor(tg).URL
		r := run(t, a, tg, absoluteExchange(tg, "/"))
		if r.err != nil || r.status != 407 {
			t.Fatalf("without credentials: %+v", r)
		}
		if s, realm := agentpool.ParseProxyAuthenticate(r.header.Values("Proxy-Authenticate")); s != "basic" || realm != testutil.DefaultSquidRealm {
			t.Fatalf("challenge %q %q", s, realm)
		}
		x := absoluteExchange(tg, "/")
		x.headers = append(x.headers, "Proxy-Authorization: "+agentpool.BasicAuthorization("alice", "s3cret pw"))
		if r := run(t, a, tg, x); r.err != nil || r.status != 200 || r.body != "ok" {
			t.Fatalf("with credentials: %+v", r)
		}
		if req := rec.last(t); req.Header.Get("Proxy-Authorization") != "" {
			t.Fatal("squid forwarded Proxy-Authorization to the origin")
		}
	})
}

// TestQueuedRequestShowsNoProxyRule: inspection shows which NO_PROXY entry
// decided a request while it waits, and on its events.
func TestQueuedRequestShowsNoProxyRule(t *testing.T) {
	testutil.CheckLeaks(t)
	gate := make(chan struct{})
	up := startHTTP(t, gatedHandler(gate))
	o := keepAliveOptions()
	o.MaxSockets = 1
	o.ProxyEnv = map[string]string{"HTTP_PROXY": "http://127.0.0.1:1", "NO_PROXY": "127.0.0.0/8"}
	a := newAgent(t, o, agentpool.Deps{})
	sub := a.Subscribe(64)
	tg := target(up.port)
	tg.Proxy = a.ProxyFor(tg).URL
	x1, x2 := newExchange("/", autoRelease), newExchange("/", autoRelease)
	a.Acquire(tg, x1)
	w2 := a.Acquire(tg, x2)
	if w2.ProxyRule() != "127.0.0.0/8" {
		t.Fatalf("Want.ProxyRule = %q", w2.ProxyRule())
	}
	ev := waitEvent(t, sub, isType(agentpool.EventRequestQueued))
	if ev.ProxyRule != "127.0.0.0/8" || ev.Proxy != "" {
		t.Fatalf("queued event %+v", ev)
	}
	ns := snapshotName(a, a.GetName(tg))
	if len(ns.Queued) != 1 || ns.Queued[0].ID != w2.ID() || ns.Queued[0].ProxyRule != "127.0.0.0/8" {
		t.Fatalf("queued %+v", ns.Queued)
	}
	if len(ns.Sockets) != 1 || ns.Sockets[0].ProxyRule != "127.0.0.0/8" || ns.Sockets[0].ViaProxy {
		t.Fatalf("sockets %+v", ns.Sockets)
	}
	close(gate)
	for _, x := range []*exchange{x1, x2} {
		if r := recv(t, x.resultCh, "result"); r.err != nil {
			t.Fatal(r.err)
		}
	}
}
