package rpc_test

import (
	"context"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"strconv"
	"strings"
	"testing"
	"time"

	"google.golang.org/grpc/codes"

	pb "github.com/httpgateway/httpgateway/gen/httpgateway/v1"
	"github.com/httpgateway/httpgateway/internal/egress"
	"github.com/httpgateway/httpgateway/internal/rpc"
	"github.com/httpgateway/httpgateway/internal/testutil"
)

// mapResolver answers names from a fixed table and never touches the
// network; other names are not found.
type mapResolver map[string]string

func (m mapResolver) LookupNetIP(_ context.Context, _, host string) ([]netip.Addr, error) {
	a, ok := m[strings.TrimSuffix(host, ".")]
	if !ok {
		return nil, &net.DNSError{Err: "no such host", Name: host, IsNotFound: true}
	}
	return []netip.Addr{netip.MustParseAddr(a)}, nil
}

// TestProxyOriginEgress: a request through a proxy is checked twice, the
// proxy's address when it is dialed and the origin behind it by name
// (resolved by the gateway, every address checked): per request for http
// (absolute-form, on a socket shared by every origin), redirect hops
// included, and before the tunnel for https (CONNECT). The proxy (a real
// squid, allowed) never hears of a denied origin.
func TestProxyOriginEgress(t *testing.T) {
	testutil.CheckLeaks(t)
	sq := testutil.StartSquidProxy(t, testutil.SquidOptions{})
	up := testutil.NewUpstream(t, keepAliveServer)
	redirector := testutil.NewUpstream(t, serveOnce("HTTP/1.1 302 Found\r\nLocation: http://internal.test/next\r\nContent-Length: 0\r\n\r\n"))
	tlsUp := httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		_, _ = io.WriteString(w, "tunnelled")
	}))
	t.Cleanup(tlsUp.Close)
	tlsPort := tlsUp.Listener.Addr().(*net.TCPAddr).Port

	loop := func(port int) string { return "127.0.0.1:" + strconv.Itoa(port) }
	depsFor, _ := rolePolicies(t, egress.Options{
		Allow: []string{loop(sq.Port), loop(up.Port), loop(redirector.Port), loop(tlsPort)},
		Deny:  []string{"blocked.test"},
	}, mapResolver{"internal.test": "10.1.2.3", "blocked.test": "127.0.0.1"})
	g := startGateway(t, rpc.Options{AgentDepsFor: depsFor})
	ctx := testCtx(t)
	if _, err := g.agents.CreateAgent(ctx, &pb.CreateAgentRequest{Name: "proxied", Options: &pb.AgentOptions{
		ProxyEnv: map[string]string{"HTTP_PROXY": sq.URL, "HTTPS_PROXY": sq.URL}}}); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		_, _ = g.agents.DestroyAgent(context.Background(), &pb.DestroyAgentRequest{Name: "proxied"})
	})
	noVerify := &pb.RequestOptions{Tls: &pb.TlsOptions{RejectUnauthorized: ptr(false)}}

	denied := []struct {
		name     string
		req      *pb.FetchRequest
		wantRule string
		wantHost string
	}{
		{name: "absolute-form, origin resolves to a private address",
			req:      &pb.FetchRequest{Url: "http://internal.test/x"},
			wantRule: "default-deny:private 10.0.0.0/8", wantHost: "internal.test"},
		{name: "absolute-form, origin denied by name",
			req:      &pb.FetchRequest{Url: "http://blocked.test:8080/"},
			wantRule: "deny:blocked.test", wantHost: "blocked.test"},
		{name: "absolute-form, metadata address",
			req:      &pb.FetchRequest{Url: "http://169.254.169.254/latest/meta-data/"},
			wantRule: "default-deny:link-local 169.254.0.0/16", wantHost: "169.254.169.254"},
		{name: "absolute-form, origin that does not resolve here",
			req:      &pb.FetchRequest{Url: "http://nowhere.test/"},
			wantRule: "unresolved", wantHost: "nowhere.test"},
		{name: "absolute-form, redirect hop to a denied origin",
			req:      &pb.FetchRequest{Url: "http://" + loop(redirector.Port) + "/", Options: &pb.RequestOptions{Redirect: pb.RedirectMode_REDIRECT_MODE_FOLLOW}},
			wantRule: "default-deny:private 10.0.0.0/8", wantHost: "internal.test"},
		{name: "CONNECT, origin resolves to a private address",
			req:      &pb.FetchRequest{Url: "https://internal.test/", Options: noVerify},
			wantRule: "default-deny:private 10.0.0.0/8", wantHost: "internal.test"},
		{name: "CONNECT, origin denied by name",
			req:      &pb.FetchRequest{Url: "https://blocked.test:8443/", Options: noVerify},
			wantRule: "deny:blocked.test", wantHost: "blocked.test"},
	}
	for _, tt := range denied {
		t.Run(tt.name, func(t *testing.T) {
			tt.req.Agent = "proxied"
			_, err := g.req.Fetch(ctx, tt.req)
			wantStatus(t, err, codes.PermissionDenied, "ERR_GATEWAY_EGRESS_DENIED")
			if m := metadataOf(err); m["rule"] != tt.wantRule || m["host"] != tt.wantHost {
				t.Fatalf("ErrorInfo metadata %v, want rule %q host %q", m, tt.wantRule, tt.wantHost)
			}
		})
	}

	// Allowed neighbours go through the same proxy.
	res, err := g.req.Fetch(ctx, &pb.FetchRequest{Url: "http://" + loop(up.Port) + "/", Agent: "proxied"})
	if err != nil || string(res.GetBody()) != "hello" || !res.GetSocket().GetViaProxy() {
		t.Fatalf("absolute-form to an allowed origin: %v %q %v", err, res.GetBody(), res.GetSocket())
	}
	res, err = g.req.Fetch(ctx, &pb.FetchRequest{Url: "https://" + loop(tlsPort) + "/", Agent: "proxied", Options: noVerify})
	if err != nil || string(res.GetBody()) != "tunnelled" || !res.GetSocket().GetViaProxy() {
		t.Fatalf("CONNECT to an allowed origin: %v %q %v", err, res.GetBody(), res.GetSocket())
	}

	// squid logs a transaction when it ends: once the allowed ones are
	// there, a denied origin would be too had it been sent.
	deadline := time.Now().Add(10 * time.Second)
	for !strings.Contains(sq.AccessLog(), "CONNECT "+loop(tlsPort)) && time.Now().Before(deadline) {
		time.Sleep(10 * time.Millisecond) // polling squid's log, bounded
	}
	log := sq.AccessLog()
	if !strings.Contains(log, "GET http://"+loop(up.Port)+"/") || !strings.Contains(log, "CONNECT "+loop(tlsPort)) {
		t.Fatalf("squid did not carry the allowed requests:\n%s", log)
	}
	for _, h := range []string{"internal.test", "blocked.test", "169.254.169.254", "nowhere.test"} {
		if strings.Contains(log, h) {
			t.Errorf("squid was asked for denied origin %s:\n%s", h, log)
		}
	}
}
