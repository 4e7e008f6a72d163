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
		asked   string // "" = CheckName not called
		wantErr bool
	}{
		{name: "absolute-form", target: agentpool.Target{Protocol: "http:", Host: "origin.test", Proxy: px}, asked: "origin.test:80"},
		{name: "absolute-form with a port", target: agentpool.Target{Protocol: "http:", Host: "origin.test", Port: 8080, Proxy: px}, asked: "origin.test:8080"},
		{name: "absolute-form, no host", target: agentpool.Target{Protocol: "http:", Proxy: px}, asked: "localhost:80"},
		{name: "absolute-form denied", target: agentpool.Target{Protocol: "http:", Host: "denied.test", Proxy: px}, asked: "denied.test:80", wantErr: true},
		{name: "direct http", target: agentpool.Target{Protocol: "http:", Host: "denied.test"}},
		{name: "https through the proxy (checked at dial)", target: agentpool.Target{Protocol: "https:", Host: "denied.test", Proxy: px}},
		{name: "unix socket", target: agentpool.Target{Protocol: "http:", SocketPath: "/tmp/x.sock", Proxy: px}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			nc := &nameChecks{deny: map[string]bool{"denied.test": true}}
			a := newAgent(t, agentpool.Options{}, agentpool.Deps{CheckName: nc.check})
			err := a.CheckOrigin(context.Background(), tt.target)
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
	if err := newAgent(t, agentpool.Options{}, agentpool.Deps{}).CheckOrigin(context.Background(), tests[3].target); err != nil {
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
