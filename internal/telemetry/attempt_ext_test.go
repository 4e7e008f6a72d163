package telemetry_test

import (
	"bufio"
	"context"
	"encoding/pem"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"

	"go.opentelemetry.io/otel/codes"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"

	pb "github.com/httpgateway/httpgateway/gen/httpgateway/v1"
	"github.com/httpgateway/httpgateway/internal/agentpool"
	"github.com/httpgateway/httpgateway/internal/rpc"
	"github.com/httpgateway/httpgateway/internal/testutil"
)

// loopbackResolver resolves every name to 127.0.0.1: an upstream on
// loopback under a name, so that the dial has a DNS phase.
type loopbackResolver struct{}

func (loopbackResolver) LookupNetIP(context.Context, string, string) ([]netip.Addr, error) {
	return []netip.Addr{netip.MustParseAddr("127.0.0.1")}, nil
}

// TestNewSocketPhases: a new https socket to a name gets socket.lookup,
// socket.connect and socket.secureConnect events at the moments those
// phases ended, in order, with their durations, the peer and the TLS
// parameters; the pooled socket of the next request gets none, and both
// spans have the peer.
func TestNewSocketPhases(t *testing.T) {
	testutil.CheckLeaks(t)
	r := startRig(t, func(o *rpc.Options) { o.AgentDeps = agentpool.Deps{Resolver: loopbackResolver{}} })
	up := httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) { io.WriteString(w, "hello") }))
	t.Cleanup(up.Close)
	_, port := hostPort(t, strings.Replace(up.URL, "https://", "http://", 1))
	ca := string(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: up.Certificate().Raw}))
	in := &pb.FetchRequest{Url: "https://upstream.test:" + strconv.Itoa(port) + "/x",
		Options: &pb.RequestOptions{Tls: &pb.TlsOptions{Ca: ca, Servername: "example.com"}}}
	for i := 0; i < 2; i++ {
		if res, err := r.req.Fetch(testCtx(t), in); err != nil || res.GetStatusCode() != 200 {
			t.Fatalf("fetch %d: %v %v", i, res.GetStatusCode(), err)
		}
	}
	spans := r.waitSpans(t, 2, clientSpans)
	for _, s := range spans {
		wantTree(t, r, s, "Fetch")
		wantEventTimes(t, s)
		wantAttr(t, s, "server.address", "upstream.test")
		wantAttr(t, s, "network.peer.address", "127.0.0.1")
		wantAttr(t, s, "network.peer.port", port)
	}
	first := spans[0]
	wantEvents(t, first, "socket socket.lookup socket.connect socket.secureConnect finish response")
	for _, name := range []string{"socket.lookup", "socket.connect", "socket.secureConnect"} {
		if d, ok := eventAttrs(first, name)["httpgateway.duration_ms"]; !ok || d.AsFloat64() < 0 {
			t.Errorf("%s: duration %v", name, d.AsInterface())
		}
	}
	if ev := eventAttrs(first, "socket.connect"); ev["network.peer.address"].AsString() != "127.0.0.1" || ev["network.peer.port"].AsInt64() != int64(port) {
		t.Errorf("socket.connect event %v, want the peer", ev)
	}
	ev := eventAttrs(first, "socket.secureConnect")
	if ev["tls.protocol.version"].AsString() != "1.3" || ev["tls.cipher"].AsString() == "" || ev["tls.resumed"].AsBool() {
		t.Errorf("socket.secureConnect event %v, want TLS 1.3, a cipher, not resumed", ev)
	}
	// The dial's moments fall between the socket's assignment and the
	// head's send; nothing was dialed for the pooled socket.
	wantEvents(t, spans[1], "socket finish response")
}

// retryUpstream answers the first request on its first connection, then
// closes that connection when the next request arrives on it, unanswered
// (a server dropping an idle keep-alive connection as a request is sent).
// Later connections answer every request. It records each request's
// traceparent, in arrival order.
type retryUpstream struct {
	*testutil.Upstream
	mu   sync.Mutex
	seen []string
}

func startRetryUpstream(t *testing.T) *retryUpstream {
	u := &retryUpstream{}
	var conns atomic.Int32
	u.Upstream = testutil.NewUpstream(t, func(c net.Conn) {
		first := conns.Add(1) == 1
		br := bufio.NewReader(c)
		for i := 0; ; i++ {
			head, _, err := testutil.ReadRequest(br)
			if err != nil {
				return
			}
			u.mu.Lock()
			u.seen = append(u.seen, headerOf(head, "traceparent"))
			u.mu.Unlock()
			if first && i == 1 {
				return // closes with the request unanswered
			}
			if _, err := io.WriteString(c, "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok"); err != nil {
				return
			}
		}
	})
	return u
}

func (u *retryUpstream) traceparents() []string {
	u.mu.Lock()
	defer u.mu.Unlock()
	return append([]string(nil), u.seen...)
}

// headerOf returns the value of the first header line called name in a
// request head.
func headerOf(head, name string) string {
	for _, l := range strings.Split(head, "\r\n") {
		if k, v, ok := strings.Cut(l, ":"); ok && strings.EqualFold(k, name) {
			return strings.TrimSpace(v)
		}
	}
	return ""
}

// TestRetryAttempt: the retry of a GET whose reused socket was closed
// under it is an attempt of its own: the failed attempt's span ends with
// ECONNRESET, the retry's span has resend_count 1 and a new socket, and
// each sent its own traceparent.
func TestRetryAttempt(t *testing.T) {
	testutil.CheckLeaks(t)
	r := startRig(t)
	up := startRetryUpstream(t)
	on := true
	if _, err := r.agents.CreateAgent(testCtx(t), &pb.CreateAgentRequest{Name: "retrying",
		Options: &pb.AgentOptions{KeepAlive: &on, RetryReusedIdempotent: true}}); err != nil {
		t.Fatal(err)
	}
	in := &pb.FetchRequest{Url: "http://" + up.Addr + "/x", Agent: "retrying"}
	for i := 0; i < 2; i++ {
		if res, err := r.req.Fetch(testCtx(t), in); err != nil || res.GetStatusCode() != 200 {
			t.Fatalf("fetch %d: %v %v", i, res.GetStatusCode(), err)
		}
	}
	spans := r.waitSpans(t, 3, clientSpans)
	failed, retried := spans[1], spans[2]
	if failed.Parent().SpanID() != retried.Parent().SpanID() || failed.Parent().SpanID() == spans[0].Parent().SpanID() {
		t.Error("want the failed attempt and its retry under the second Fetch's RPC span")
	}
	wantTree(t, r, retried, "Fetch")
	if !eventAttrs(failed, "socket")["httpgateway.socket.reused"].AsBool() {
		t.Error("the failed attempt did not get the pooled socket")
	}
	wantAttr(t, failed, "error.type", "ECONNRESET")
	wantNoAttr(t, failed, "http.request.resend_count")
	if failed.Status().Code != codes.Error {
		t.Errorf("failed attempt status %v, want Error", failed.Status())
	}
	wantAttr(t, retried, "http.request.resend_count", 1)
	wantAttr(t, retried, "http.response.status_code", 200)
	wantNoAttr(t, retried, "error.type")
	wantEvents(t, retried, "socket socket.connect finish response")
	if retried.StartTime().Before(failed.EndTime()) {
		t.Errorf("retry starts at %v, before the failed attempt ends at %v", retried.StartTime(), failed.EndTime())
	}

	tps := up.traceparents()
	if len(tps) != 3 {
		t.Fatalf("upstream saw %d requests, want 3 (first, failed, retry): %q", len(tps), tps)
	}
	for i, s := range []sdktrace.ReadOnlySpan{spans[0], failed, retried} {
		wantTraceparent(t, "request "+strconv.Itoa(i), tps[i], s)
	}
}

// TestLoginAttempt: a 401 answered through Login is two attempts: the
// first ends with the 401 (error.type 401, a login event), the resend
// with the credentials has resend_count 1 and its own traceparent.
func TestLoginAttempt(t *testing.T) {
	testutil.CheckLeaks(t)
	r := startRig(t)
	up, tps := startTraceparentUpstream(t, func(w http.ResponseWriter, req *http.Request) {
		if _, _, ok := req.BasicAuth(); !ok {
			w.Header().Set("WWW-Authenticate", `Basic realm="test"`)
			w.WriteHeader(http.StatusUnauthorized)
			return
		}
		io.WriteString(w, "welcome")
	})
	ctx := testCtx(t)
	cr, err := r.req.Request(ctx, &pb.RequestRequest{Options: &pb.RequestOptions{Url: up.URL + "/private", LoginOnServerAuth: true}})
	if err != nil {
		t.Fatal(err)
	}
	id := cr.GetRequest().GetRequestId()
	if _, err := r.req.End(ctx, &pb.EndRequest{RequestId: id}); err != nil {
		t.Fatal(err)
	}
	evs, err := r.req.Events(ctx, &pb.EventsRequest{RequestId: id})
	if err != nil {
		t.Fatal(err)
	}
	logins := 0
	for {
		ev, err := evs.Recv()
		if err != nil {
			break
		}
		if ev.GetEvent().GetLogin() != nil {
			logins++
			if _, err := r.req.Login(ctx, &pb.LoginRequest{RequestId: id, Username: "u", Password: "p"}); err != nil {
				t.Fatal(err)
			}
		}
	}
	if logins != 1 {
		t.Fatalf("%d login events, want 1", logins)
	}
	spans := r.waitSpans(t, 2, clientSpans)
	challenged, resent := spans[0], spans[1]
	wantAttr(t, challenged, "http.response.status_code", 401)
	wantAttr(t, challenged, "error.type", "401")
	wantNoAttr(t, challenged, "http.request.resend_count")
	wantEvents(t, challenged, "socket socket.connect finish login")
	wantAttr(t, resent, "http.request.resend_count", 1)
	wantAttr(t, resent, "http.response.status_code", 200)
	// The challenged socket is handed back to the pool as 'login' is
	// emitted; the resend reuses it when the pool has it free again by the
	// time Login asks for a socket, and gets a new one otherwise (a race
	// the test does not control). Either way each attempt has its own
	// events.
	if got := strings.Join(eventNames(resent), " "); got != "socket finish response" && got != "socket socket.connect finish response" {
		t.Errorf("resent span events %q, want \"socket finish response\" (reused) or with socket.connect (new)", got)
	}
	for _, s := range spans {
		wantTree(t, r, s, "Request")
	}
	seen := tps.seen()
	if len(seen) != 2 {
		t.Fatalf("upstream saw %d requests, want 2", len(seen))
	}
	wantTraceparent(t, "challenged", seen[0], challenged)
	wantTraceparent(t, "resent", seen[1], resent)
}
