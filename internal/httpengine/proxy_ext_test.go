package httpengine_test

import (
	"context"
	"encoding/pem"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/httpgateway/httpgateway/internal/agentpool"
	"github.com/httpgateway/httpgateway/internal/httpengine"
	"github.com/httpgateway/httpgateway/internal/testutil"
)

func proxiedAgent(t *testing.T, env map[string]string) *agentpool.Agent {
	o := agentpool.DefaultOptions()
	o.KeepAlive = true
	o.ProxyEnv = env
	return newAgent(t, o, agentpool.Deps{})
}

// tlsCA returns the PEM of a TLS test server's certificate, to trust it.
func tlsCA(srv *httptest.Server) []byte {
	return pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: srv.Certificate().Raw})
}

// TestProxyThroughSquid sends requests through Debian's squid: http in
// absolute-form, https with CONNECT, and a NO_PROXY bypass.
func TestProxyThroughSquid(t *testing.T) {
	testutil.CheckLeaks(t)
	sq := testutil.StartSquidProxy(t, testutil.SquidOptions{})
	plain := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.WriteString(w, "via:"+r.Header.Get("Via"))
	}))
	t.Cleanup(plain.Close)
	secure := httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.WriteString(w, "secure")
	}))
	t.Cleanup(secure.Close)
	host, port := hostPort(t, plain.URL)
	shost, sport := hostPort(t, strings.Replace(secure.URL, "https://", "http://", 1))

	t.Run("http via absolute-form", func(t *testing.T) {
		a := proxiedAgent(t, map[string]string{"HTTP_PROXY": sq.URL})
		r := do(t, a, httpengine.Options{Host: host, Port: port, Path: "/abs"}, nil)
		if !strings.Contains(string(r.body), "squid") {
			t.Fatalf("response did not come through squid: %q", r.body)
		}
		sock := r.events[0].Socket
		if !sock.ViaProxy {
			t.Fatalf("socket not marked as proxied: %+v", sock)
		}
	})
	t.Run("https via CONNECT", func(t *testing.T) {
		a := proxiedAgent(t, map[string]string{"HTTPS_PROXY": sq.URL})
		r := do(t, a, httpengine.Options{Protocol: "https:", Host: shost, Port: sport,
			TLS: &agentpool.TLSOptions{CA: tlsCA(secure)}}, nil)
		if string(r.body) != "secure" {
			t.Fatalf("body %q", r.body)
		}
		if !strings.Contains(sq.AccessLog(), "CONNECT 127.0.0.1:") {
			// squid logs a CONNECT when the tunnel closes; the agent's
			// cleanup closes it, so only the response is checked here.
			t.Logf("access log so far: %s", sq.AccessLog())
		}
	})
	t.Run("NO_PROXY goes direct", func(t *testing.T) {
		a := proxiedAgent(t, map[string]string{"HTTP_PROXY": sq.URL, "NO_PROXY": "127.0.0.1"})
		r := do(t, a, httpengine.Options{Host: host, Port: port, Path: "/direct"}, nil)
		if string(r.body) != "via:" {
			t.Fatalf("bypass went through a proxy: %q", r.body)
		}
		if s := r.events[0].Socket; s.ViaProxy || s.ProxyRule != "127.0.0.1" {
			t.Fatalf("socket %+v: want direct with rule 127.0.0.1", s)
		}
	})
}

// TestProxyLogin: squid with Basic auth answers 407; the engine raises
// Electron's 'login' and Login sends the request again with credentials.
func TestProxyLogin(t *testing.T) {
	testutil.CheckLeaks(t)
	sq := testutil.StartSquidProxy(t, testutil.SquidOptions{BasicAuth: map[string]string{"alice": "s3cret"}})
	plain := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.WriteString(w, "hello "+r.Method)
	}))
	t.Cleanup(plain.Close)
	secure := httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.WriteString(w, "secure")
	}))
	t.Cleanup(secure.Close)
	host, port := hostPort(t, plain.URL)
	shost, sport := hostPort(t, strings.Replace(secure.URL, "https://", "http://", 1))
	env := map[string]string{"HTTP_PROXY": sq.URL, "HTTPS_PROXY": sq.URL}

	cases := []struct {
		name string
		opts httpengine.Options
		want string
	}{
		{"http 407 as a response", httpengine.Options{Host: host, Port: port, Method: "POST"}, "hello POST"},
		{"https 407 on CONNECT", httpengine.Options{Protocol: "https:", Host: shost, Port: sport, TLS: &agentpool.TLSOptions{CA: tlsCA(secure)}}, "secure"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			a := proxiedAgent(t, env)
			c, err := httpengine.Request(a, false, tc.opts, 0)
			if err != nil {
				t.Fatal(err)
			}
			if err := c.End(context.Background(), []byte("body")); err != nil {
				t.Fatal(err)
			}
			ev := waitLogin(t, c)
			if !ev.Login.IsProxy || ev.Login.Scheme != "basic" || ev.Login.Realm != testutil.DefaultSquidRealm || ev.Login.Port != sq.Port {
				t.Fatalf("login event %+v", ev.Login)
			}
			if err := c.Login("alice", "s3cret"); err != nil {
				t.Fatal(err)
			}
			r := collectResult(t, c)
			if r.status != 200 || string(r.body) != tc.want {
				t.Fatalf("status %d body %q", r.status, r.body)
			}
		})
	}
	t.Run("empty credentials cancel", func(t *testing.T) {
		a := proxiedAgent(t, env)
		c, err := httpengine.Request(a, false, httpengine.Options{Host: host, Port: port}, 0)
		if err != nil {
			t.Fatal(err)
		}
		end(t, c)
		waitLogin(t, c)
		if err := c.Login("", ""); err != nil {
			t.Fatal(err)
		}
		got := names(events(t, c))
		if !strings.HasSuffix(got, "req:login req:error("+httpengine.ErrLoginCancelled+") req:close") {
			t.Fatalf("events %s", got)
		}
	})
}

// TestServerLogin: a 401 with WWW-Authenticate raises 'login' (isProxy
// false) when the request opts in.
func TestServerLogin(t *testing.T) {
	testutil.CheckLeaks(t)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if u, p, ok := r.BasicAuth(); !ok || u != "bob" || p != "pw" {
			w.Header().Set("WWW-Authenticate", `Basic realm="app"`)
			w.WriteHeader(http.StatusUnauthorized)
			return
		}
		_, _ = io.WriteString(w, "welcome")
	}))
	t.Cleanup(srv.Close)
	host, port := hostPort(t, srv.URL)
	a := keepAliveAgent(t)
	c, err := httpengine.Request(a, false, httpengine.Options{Host: host, Port: port, LoginOnServerAuth: true}, 0)
	if err != nil {
		t.Fatal(err)
	}
	end(t, c)
	ev := waitLogin(t, c)
	if ev.Login.IsProxy || ev.Login.Realm != "app" || ev.Login.Host != host {
		t.Fatalf("login %+v", ev.Login)
	}
	if err := c.Login("bob", "pw"); err != nil {
		t.Fatal(err)
	}
	if r := collectResult(t, c); string(r.body) != "welcome" {
		t.Fatalf("body %q", r.body)
	}
}

func waitLogin(t *testing.T, c *httpengine.ClientRequest) httpengine.Event {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10e9)
	defer cancel()
	for seq := uint64(1); ; seq++ {
		ev, err := c.Events().Next(ctx, seq)
		if err != nil {
			t.Fatalf("no login event: %v", err)
		}
		if ev.Kind == httpengine.EventLogin {
			return ev
		}
	}
}
