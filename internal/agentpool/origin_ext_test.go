package agentpool_test

import (
	"context"
	"errors"
	"fmt"
	"net/url"
	"strings"
	"sync"
	"testing"

	"github.com/httpgateway/httpgateway/internal/agentpool"
	"github.com/httpgateway/httpgateway/internal/nodeerr"
	"github.com/httpgateway/httpgateway/internal/testutil"
)

// errPolicy is nameChecks' denial.
var errPolicy = errors.New("policy says no")

// nameChecks is a Deps.CheckName that records what it was asked and
// denies the hosts in deny.
type nameChecks struct {
	deny map[string]bool

	mu    sync.Mutex
	asked []string
}

func (n *nameChecks) check(_ context.Context, host string, port uint16) error {
	n.mu.Lock()
	n.asked = append(n.asked, fmt.Sprintf("%s:%d", host, port))
	n.mu.Unlock()
	if n.deny[host] {
		return errPolicy
	}
	return nil
}

func (n *nameChecks) list() []string {
	n.mu.Lock()
	defer n.mu.Unlock()
	return append([]string(nil), n.asked...)
}

// TestCheckOrigin: CheckOrigin asks Deps.CheckName about the origin of an
// absolute-form request only (an http target through a proxy), with the
// protocol's default port; any other target is checked when it is dialed.
// A plain error from the hook is an ERR_GATEWAY_EGRESS_DENIED naming the
// origin and the proxy.
func TestCheckOrigin(t *testing.T) {
	testutil.CheckLeaks(t)
	px, _ := url.Parse("http://127.0.0.1:3128")
	tests := []struct {
		name    string
		target  agentpool.Target
		rt      string // the request-target of the head
		asked   string // "" = CheckName not called
		wantErr bool
	}{
		{name: "absolute-form", target: agentpool.Target{Protocol: "http:", Host: "origin.test", Proxy: px}, rt: "http://origin.test/", asked: "origin.test:80"},
		{name: "absolute-form with a port", target: agentpool.Target{Protocol: "http:", Host: "origin.test", Port: 8080, Proxy: px}, rt: "http://origin.test:8080/x", asked: "origin.test:8080"},
		{name: "absolute-form, no host", target: agentpool.Target{Protocol: "http:", Proxy: px}, rt: "http://localhost/", asked: "localhost:80"},
		{name: "absolute-form denied", target: agentpool.Target{Protocol: "http:", Host: "denied.test", Proxy: px}, rt: "http://denied.test/", asked: "denied.test:80", wantErr: true},
		{name: "direct http", target: agentpool.Target{Protocol: "http:", Host: "denied.test"}, rt: "/"},
		{name: "https through the proxy (checked at dial)", target: agentpool.Target{Protocol: "https:", Host: "denied.test", Proxy: px}, rt: "/"},
		{name: "unix socket", target: agentpool.Target{Protocol: "http:", SocketPath: "/tmp/x.sock", Proxy: px}, rt: "/"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			nc := &nameChecks{deny: map[string]bool{"denied.test": true}}
			a := newAgent(t, agentpool.Options{}, agentpool.Deps{CheckName: nc.check})
			err := a.CheckOrigin(context.Background(), tt.target, tt.rt)
			if got := nc.list(); (tt.asked == "" && len(got) != 0) || (tt.asked != "" && (len(got) != 1 || got[0] != tt.asked)) {
				t.Fatalf("CheckName asked %v, want %q", got, tt.asked)
			}
			if !tt.wantErr {
				if err != nil {
					t.Fatalf("CheckOrigin: %v", err)
				}
				return
			}
			if nodeerr.Code(err) != nodeerr.ERR_GATEWAY_EGRESS_DENIED {
				t.Fatalf("error %v, want ERR_GATEWAY_EGRESS_DENIED", err)
			}
			if ne := nodeerr.As(err); ne.Address != "denied.test" || ne.Port != 80 || !errors.Is(err, errPolicy) ||
				!strings.Contains(err.Error(), "through proxy http://127.0.0.1:3128") {
				t.Fatalf("error %#v does not name the origin", ne)
			}
		})
	}
	// Without the hook nothing is checked.
	if err := newAgent(t, agentpool.Options{}, agentpool.Deps{}).CheckOrigin(context.Background(), tests[3].target, tests[3].rt); err != nil {
		t.Fatalf("no CheckName: %v", err)
	}
}

// TestConnectChecksOrigin: a CONNECT tunnel's origin goes through
// Deps.CheckName before anything is dialed: a denied one fails the socket
// with the denial and the proxy never sees a connection; an allowed one is
// asked for once and tunnelled.
func TestConnectChecksOrigin(t *testing.T) {
	testutil.CheckLeaks(t)
	heads := make(chan string, 1)
	px := fakeProxy(t, heads, "HTTP/1.1 403 Forbidden\r\nContent-Length: 0\r\n\r\n")
	nc := &nameChecks{deny: map[string]bool{"denied.test": true}}
	a := newAgent(t, keepAliveOptions(), agentpool.Deps{CheckName: nc.check})
	proxy := mustURL(t, fmt.Sprintf("http://127.0.0.1:%d", px.Port))

	x := newExchange("/", autoRelease)
	a.Acquire(agentpool.Target{Protocol: "https:", Host: "denied.test", Port: 8443, Proxy: proxy}, x)
	recv(t, x.socketCh, "socket")
	err := recv(t, x.connectCh, "connect")
	if nodeerr.Code(err) != nodeerr.ERR_GATEWAY_EGRESS_DENIED || !errors.Is(err, errPolicy) {
		t.Fatalf("CONNECT to a denied origin: %v", err)
	}

	// An allowed origin reaches the proxy (which refuses it: the
	// tunnel's fate is not the point), after one check.
	x = newExchange("/", autoRelease)
	a.Acquire(agentpool.Target{Protocol: "https:", Host: "allowed.test", Port: 8443, Proxy: proxy}, x)
	recv(t, x.socketCh, "socket")
	if err := recv(t, x.connectCh, "connect"); nodeerr.Code(err) != nodeerr.ERR_GATEWAY_PROXY_CONNECT_FAILED {
		t.Fatalf("CONNECT to an allowed origin: %v", err)
	}
	if head := recv(t, heads, "CONNECT head"); !strings.HasPrefix(head, "CONNECT allowed.test:8443 ") {
		t.Fatalf("the proxy's first CONNECT was %q: the denied origin reached it", head)
	}
	if got := nc.list(); len(got) != 2 || got[0] != "denied.test:8443" || got[1] != "allowed.test:8443" {
		t.Fatalf("CheckName asked %v", got)
	}
}

// TestCheckOriginRequestTarget: the origin check holds only for the
// request-target the proxy will read, so CheckOrigin fails closed, before
// CheckName is asked, when that target names any other authority than the
// origin checked: another host behind userinfo, another port, a parser
// differential between the authority and the path. The same origin in
// every spelling the engine writes goes on to CheckName.
func TestCheckOriginRequestTarget(t *testing.T) {
	testutil.CheckLeaks(t)
	px, _ := url.Parse("http://127.0.0.1:3128")
	origin := agentpool.Target{Protocol: "http:", Host: "allowed.test", Proxy: px}
	withPort := agentpool.Target{Protocol: "http:", Host: "allowed.test", Port: 8080, Proxy: px}
	v6 := agentpool.Target{Protocol: "http:", Host: "::1", Port: 8080, Proxy: px}
	tests := []struct {
		name   string
		target agentpool.Target
		rt     string
		ok     bool
	}{
		{"origin", origin, "http://allowed.test/secret", true},
		{"origin, port 80 spelled out", origin, "http://allowed.test:80/", true},
		{"origin, path that looks like an authority", origin, "http://allowed.test//10.1.2.3/x", true},
		{"origin with a port", withPort, "http://allowed.test:8080/x?y", true},
		{"IPv6 origin", v6, "http://[::1]:8080/", true},
		{"OPTIONS * asks the proxy itself", origin, "*", true},

		{"userinfo hides another host", origin, "http://allowed.test@10.1.2.3/secret", false},
		{"another port", origin, "http://allowed.test:6379/x", false},
		{"port dropped", withPort, "http://allowed.test/x", false},
		{"another host", origin, "http://10.1.2.3/", false},
		{"host with a suffix", origin, "http://allowed.testevil/", false},
		{"nothing after the authority", origin, "http://allowed.test", false},
		{"query right after the authority", origin, "http://allowed.test?x", false},
		{"backslash after the authority", origin, `http://allowed.test\@10.1.2.3/`, false},
		{"escaped authority", origin, "http://allowed%2etest/", false},
		{"empty port", origin, "http://allowed.test:/", false},
		{"https scheme", origin, "https://allowed.test/", false},
		{"upper-case scheme", origin, "HTTP://allowed.test/", false},
		{"origin-form", origin, "/secret", false},
		{"scheme-relative", origin, "//allowed.test/", false},
		{"empty", origin, "", false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			nc := &nameChecks{}
			a := newAgent(t, agentpool.Options{}, agentpool.Deps{CheckName: nc.check})
			err := a.CheckOrigin(context.Background(), tt.target, tt.rt)
			asked := nc.list()
			if tt.ok {
				if err != nil || len(asked) != 1 {
					t.Fatalf("CheckOrigin(%q) = %v, CheckName asked %v; want it allowed after one check", tt.rt, err, asked)
				}
				return
			}
			if nodeerr.Code(err) != nodeerr.ERR_GATEWAY_EGRESS_DENIED || len(asked) != 0 {
				t.Fatalf("CheckOrigin(%q) = %v, CheckName asked %v; want ERR_GATEWAY_EGRESS_DENIED before any check", tt.rt, err, asked)
			}
			if ne := nodeerr.As(err); ne.Address != tt.target.Host || strings.Contains(err.Error(), tt.rt) && tt.rt != "" {
				t.Fatalf("denial %#v: want it to name the checked origin, not echo the request-target", ne)
			}
		})
	}
}

// TestCheckOriginCancelled: a CheckName still running when the request's
// context ends answers with the context's error, not a denial, and
// OriginCheckMayBlock says which targets ask CheckName at all.
func TestCheckOriginCancelled(t *testing.T) {
	testutil.CheckLeaks(t)
	px, _ := url.Parse("http://127.0.0.1:3128")
	target := agentpool.Target{Protocol: "http:", Host: "slow.test", Proxy: px}
	entered := make(chan struct{})
	a := newAgent(t, agentpool.Options{}, agentpool.Deps{CheckName: func(ctx context.Context, _ string, _ uint16) error {
		close(entered)
		<-ctx.Done()
		return ctx.Err()
	}})
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- a.CheckOrigin(ctx, target, "http://slow.test/") }()
	recv(t, entered, "CheckName")
	cancel()
	if err := recv(t, done, "CheckOrigin"); !errors.Is(err, context.Canceled) || nodeerr.Code(err) == nodeerr.ERR_GATEWAY_EGRESS_DENIED {
		t.Fatalf("CheckOrigin after cancel = %v, want context.Canceled", err)
	}

	if !a.OriginCheckMayBlock(target) {
		t.Error("OriginCheckMayBlock(absolute-form) = false with a CheckName")
	}
	for _, o := range []agentpool.Target{
		{Protocol: "http:", Host: "slow.test"},
		{Protocol: "https:", Host: "slow.test", Proxy: px},
		{Protocol: "http:", SocketPath: "/tmp/x.sock", Proxy: px},
	} {
		if a.OriginCheckMayBlock(o) {
			t.Errorf("OriginCheckMayBlock(%+v) = true", o)
		}
	}
	if newAgent(t, agentpool.Options{}, agentpool.Deps{}).OriginCheckMayBlock(target) {
		t.Error("OriginCheckMayBlock = true without a CheckName")
	}
}
