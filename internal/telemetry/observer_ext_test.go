package telemetry_test

import (
	"bufio"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/sdk/metric/metricdata"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/trace"
	grpccodes "google.golang.org/grpc/codes"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"

	pb "github.com/httpgateway/httpgateway/gen/httpgateway/v1"
	"github.com/httpgateway/httpgateway/internal/testutil"
)

// wantTree checks that span is a child of the gateway's SERVER span for
// method, itself a child of the caller's CLIENT span, all in one trace.
func wantTree(t *testing.T, r *rig, span sdktrace.ReadOnlySpan, method string) {
	t.Helper()
	name := "httpgateway.v1.ClientRequestService/" + method
	server := r.waitSpans(t, 1, func(s sdktrace.ReadOnlySpan) bool {
		return s.SpanContext().SpanID() == span.Parent().SpanID()
	})[0]
	if server.SpanKind() != trace.SpanKindServer || server.Name() != name {
		t.Errorf("HTTP span's parent is %q (%v), want the %s SERVER span", server.Name(), server.SpanKind(), name)
	}
	client := r.waitSpans(t, 1, func(s sdktrace.ReadOnlySpan) bool {
		return s.SpanContext().SpanID() == server.Parent().SpanID()
	})[0]
	if client.SpanKind() != trace.SpanKindClient || client.Name() != name {
		t.Errorf("SERVER span's parent is %q (%v), want the caller's %s CLIENT span", client.Name(), client.SpanKind(), name)
	}
	if span.SpanContext().TraceID() != client.SpanContext().TraceID() {
		t.Errorf("HTTP span in trace %s, caller's trace %s", span.SpanContext().TraceID(), client.SpanContext().TraceID())
	}
}

func wantAttr(t *testing.T, s sdktrace.ReadOnlySpan, key string, want any) {
	t.Helper()
	v, ok := attrs(s)[attribute.Key(key)]
	if !ok {
		t.Errorf("span %q: no %s, want %v (attributes %v)", s.Name(), key, want, s.Attributes())
		return
	}
	if got := v.AsInterface(); fmt.Sprint(got) != fmt.Sprint(want) {
		t.Errorf("span %q: %s = %v, want %v", s.Name(), key, got, want)
	}
}

func wantNoAttr(t *testing.T, s sdktrace.ReadOnlySpan, key string) {
	t.Helper()
	if v, ok := attrs(s)[attribute.Key(key)]; ok {
		t.Errorf("span %q: %s = %v, want none", s.Name(), key, v.AsInterface())
	}
}

func wantEvents(t *testing.T, s sdktrace.ReadOnlySpan, want string) {
	t.Helper()
	if got := strings.Join(eventNames(s), " "); got != want {
		t.Errorf("span %q events %q, want %q", s.Name(), got, want)
	}
}

// wantEventTimes checks that the span's events are in time order and
// within the span: the dial phases' events carry their own moments.
func wantEventTimes(t *testing.T, s sdktrace.ReadOnlySpan) {
	t.Helper()
	prev := s.StartTime()
	for _, e := range s.Events() {
		if e.Time.Before(prev) {
			t.Errorf("span %q: event %s at %v, before the previous moment %v", s.Name(), e.Name, e.Time, prev)
		}
		prev = e.Time
	}
	if s.EndTime().Before(prev) {
		t.Errorf("span %q ends at %v, before its last event at %v", s.Name(), s.EndTime(), prev)
	}
}

func hostPort(t *testing.T, rawURL string) (string, int) {
	t.Helper()
	h, p, err := net.SplitHostPort(strings.TrimPrefix(rawURL, "http://"))
	if err != nil {
		t.Fatal(err)
	}
	n, _ := strconv.Atoi(p)
	return h, n
}

// logLines parses the JSON log lines whose msg is msg.
func logLines(t *testing.T, r *rig, msg string) []map[string]any {
	t.Helper()
	var out []map[string]any
	for _, l := range strings.Split(strings.TrimSpace(r.logs.String()), "\n") {
		var m map[string]any
		if err := json.Unmarshal([]byte(l), &m); err != nil {
			t.Fatalf("log line %q: %v", l, err)
		}
		if m["msg"] == msg {
			out = append(out, m)
		}
	}
	return out
}

func TestKeepAliveGetTwice(t *testing.T) {
	testutil.CheckLeaks(t)
	r := startRig(t)
	up := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) { io.WriteString(w, "hello") }))
	t.Cleanup(up.Close)
	host, port := hostPort(t, up.URL)

	for i, wantReused := range []bool{false, true} {
		res, err := r.req.Fetch(testCtx(t), &pb.FetchRequest{Url: up.URL + "/x"})
		if err != nil {
			t.Fatal(err)
		}
		if res.GetReusedSocket() != wantReused {
			t.Fatalf("fetch %d: reused %v, want %v", i, res.GetReusedSocket(), wantReused)
		}
	}
	spans := r.waitSpans(t, 2, clientSpans)
	for i, s := range spans {
		if d := s.EndTime().Sub(s.StartTime()); d <= 0 || d > 10*time.Second {
			t.Errorf("span %d lasted %v", i, d)
		}
		if s.Name() != "GET" || s.SpanKind() != trace.SpanKindClient {
			t.Errorf("span %d: %q kind %v, want GET CLIENT", i, s.Name(), s.SpanKind())
		}
		wantAttr(t, s, "http.request.method", "GET")
		wantAttr(t, s, "url.full", up.URL+"/x")
		wantAttr(t, s, "server.address", host)
		wantAttr(t, s, "server.port", port)
		wantAttr(t, s, "http.response.status_code", 200)
		wantAttr(t, s, "network.protocol.version", "1.1")
		wantNoAttr(t, s, "error.type")
		wantNoAttr(t, s, "http.request.resend_count")
		// The peer is known on a new socket (once connected) and on a
		// pooled one (when assigned).
		wantAttr(t, s, "network.peer.address", "127.0.0.1")
		wantAttr(t, s, "network.peer.port", port)
		if i == 0 {
			// A new socket to an IP literal: connected, no DNS, no TLS.
			wantEvents(t, s, "socket socket.connect finish response")
			ev := eventAttrs(s, "socket.connect")
			if ev["network.peer.address"].AsString() != "127.0.0.1" || ev["network.peer.port"].AsInt64() != int64(port) {
				t.Errorf("socket.connect event %v, want the peer", ev)
			}
			if d, ok := ev["httpgateway.duration_ms"]; !ok || d.AsFloat64() < 0 {
				t.Errorf("socket.connect duration %v", d.AsInterface())
			}
		} else {
			wantEvents(t, s, "socket finish response") // reused: nothing dialed
		}
		wantEventTimes(t, s)
		if s.Status().Code != codes.Unset {
			t.Errorf("span %d: status %v, want unset", i, s.Status())
		}
		ev := eventAttrs(s, "socket")
		if got := ev["httpgateway.socket.reused"].AsBool(); got != (i == 1) {
			t.Errorf("span %d: socket event reused=%v", i, got)
		}
		if got := ev["httpgateway.agent"].AsString(); got != "global" {
			t.Errorf("span %d: socket event agent %q, want global", i, got)
		}
	}
	for _, s := range spans {
		wantTree(t, r, s, "Fetch")
	}
	if spans[0].Parent().SpanID() == spans[1].Parent().SpanID() {
		t.Error("both HTTP spans under one RPC span; want one per Fetch")
	}

	// Metrics: two requests recorded, none active, one idle connection.
	m := r.collect(t)
	h := m["http.client.request.duration"].Data.(metricdata.Histogram[float64])
	var count uint64
	for _, dp := range h.DataPoints {
		count += dp.Count
		if dp.Sum <= 0 || dp.Sum > 10 {
			t.Errorf("http.client.request.duration sum %v s for %d requests", dp.Sum, dp.Count)
		}
		if v, _ := dp.Attributes.Value("http.response.status_code"); v.AsInt64() != 200 {
			t.Errorf("duration point with status %v", v.AsInterface())
		}
		if v, _ := dp.Attributes.Value("server.address"); v.AsString() != host {
			t.Errorf("duration point with server.address %v", v.AsInterface())
		}
	}
	if count != 2 {
		t.Errorf("http.client.request.duration count %d, want 2", count)
	}
	for _, dp := range m["http.client.active_requests"].Data.(metricdata.Sum[int64]).DataPoints {
		if dp.Value != 0 {
			t.Errorf("http.client.active_requests %d after the requests, want 0", dp.Value)
		}
	}
	idle := int64(-1)
	for _, dp := range m["http.client.open_connections"].Data.(metricdata.Sum[int64]).DataPoints {
		if v, _ := dp.Attributes.Value("http.connection.state"); v.AsString() == "idle" {
			idle = dp.Value
		}
	}
	if idle != 1 {
		t.Errorf("http.client.open_connections{idle} = %d, want 1", idle)
	}
	if _, ok := m["httpgateway.agent.queued_requests"]; !ok {
		t.Error("no httpgateway.agent.queued_requests")
	}
	if _, ok := m["rpc.server.call.duration"]; !ok && m["rpc.server.duration"].Name == "" {
		t.Errorf("no gRPC server duration metric; have %v", keys(m))
	}

	// One summary line per request, with the span's ids.
	lines := logLines(t, r, "outbound request")
	if len(lines) != 2 {
		t.Fatalf("%d summary lines, want 2:\n%s", len(lines), r.logs.String())
	}
	for i, l := range lines {
		if l["trace_id"] != spans[i].SpanContext().TraceID().String() || l["span_id"] != spans[i].SpanContext().SpanID().String() {
			t.Errorf("line %d ids %v/%v, want span %s/%s", i, l["trace_id"], l["span_id"], spans[i].SpanContext().TraceID(), spans[i].SpanContext().SpanID())
		}
		if d, _ := l["duration_ms"].(float64); d <= 0 || d > 10000 {
			t.Errorf("line %d: duration_ms %v", i, l["duration_ms"])
		}
		if l["http.response.status_code"] != float64(200) || l["reused_socket"] != (i == 1) || l["bytes_received"] != float64(5) || l["url.full"] != up.URL+"/x" {
			t.Errorf("line %d: %v", i, l)
		}
	}
}

func keys(m map[string]metricdata.Metrics) []string {
	var out []string
	for k := range m {
		out = append(out, k)
	}
	return out
}

func TestConnectionRefused(t *testing.T) {
	testutil.CheckLeaks(t)
	r := startRig(t)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	port := ln.Addr().(*net.TCPAddr).Port
	ln.Close()

	_, err = r.req.Fetch(testCtx(t), &pb.FetchRequest{Url: "http://127.0.0.1:" + strconv.Itoa(port) + "/"})
	if status.Code(err) != grpccodes.Unavailable {
		t.Fatalf("Fetch: %v, want Unavailable", err)
	}
	s := r.waitSpans(t, 1, clientSpans)[0]
	wantTree(t, r, s, "Fetch")
	wantAttr(t, s, "error.type", "ECONNREFUSED")
	wantAttr(t, s, "network.peer.address", "127.0.0.1")
	wantAttr(t, s, "network.peer.port", port)
	wantNoAttr(t, s, "http.response.status_code")
	wantEvents(t, s, "socket error")
	if s.Status().Code != codes.Error || !strings.HasPrefix(s.Status().Description, "ECONNREFUSED") {
		t.Errorf("status %v, want Error ECONNREFUSED", s.Status())
	}
	lines := logLines(t, r, "outbound request")
	if len(lines) != 1 || lines[0]["error.code"] != "ECONNREFUSED" || lines[0]["level"] != "WARN" {
		t.Errorf("summary %v", lines)
	}
}

func TestAbort(t *testing.T) {
	testutil.CheckLeaks(t)
	r := startRig(t)
	got := make(chan struct{})
	up := testutil.NewUpstream(t, func(c net.Conn) { // reads the head, never answers
		br := bufio.NewReader(c)
		if _, _, err := testutil.ReadRequest(br); err == nil {
			close(got)
		}
		_, _ = io.Copy(io.Discard, br)
	})
	ctx := testCtx(t)
	cr, err := r.req.Request(ctx, &pb.RequestRequest{Options: &pb.RequestOptions{Url: "http://" + up.Addr + "/slow"}})
	if err != nil {
		t.Fatal(err)
	}
	id := cr.GetRequest().GetRequestId()
	if _, err := r.req.End(ctx, &pb.EndRequest{RequestId: id}); err != nil {
		t.Fatal(err)
	}
	<-got
	if _, err := r.req.Abort(ctx, &pb.AbortRequest{RequestId: id}); err != nil {
		t.Fatal(err)
	}
	ev, err := r.req.Events(ctx, &pb.EventsRequest{RequestId: id})
	if err != nil {
		t.Fatal(err)
	}
	for {
		if _, err := ev.Recv(); err != nil {
			break
		}
	}
	s := r.waitSpans(t, 1, clientSpans)[0]
	wantTree(t, r, s, "Request")
	wantEvents(t, s, "socket socket.connect finish abort error")
	wantAttr(t, s, "httpgateway.cancelled", true)
	wantNoAttr(t, s, "error.type")
	if s.Status().Code != codes.Unset {
		t.Errorf("status %v, want unset on an abort", s.Status())
	}
}

func Test503(t *testing.T) {
	testutil.CheckLeaks(t)
	r := startRig(t)
	up := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) { w.WriteHeader(503) }))
	t.Cleanup(up.Close)
	res, err := r.req.Fetch(testCtx(t), &pb.FetchRequest{Url: up.URL + "/busy", Method: "post"})
	if err != nil || res.GetStatusCode() != 503 {
		t.Fatalf("Fetch: %v %v", res.GetStatusCode(), err)
	}
	s := r.waitSpans(t, 1, clientSpans)[0]
	wantTree(t, r, s, "Fetch")
	if s.Name() != "POST" {
		t.Errorf("name %q, want POST", s.Name())
	}
	wantAttr(t, s, "http.response.status_code", 503)
	wantAttr(t, s, "error.type", "503")
	if s.Status().Code != codes.Error || s.Status().Description != "" {
		t.Errorf("status %v, want Error without description", s.Status())
	}
}

// TestRedirectFollowed: each hop is a span of its own (resend_count),
// and each carries its own traceparent: the upstream sees the span id of
// the hop that reached it, in the caller's trace.
func TestRedirectFollowed(t *testing.T) {
	testutil.CheckLeaks(t)
	r := startRig(t)
	up, tps := startTraceparentUpstream(t, func(w http.ResponseWriter, req *http.Request) {
		if req.URL.Path == "/a" {
			http.Redirect(w, req, "/b?sig=secret1&x=1", http.StatusFound)
			return
		}
		io.WriteString(w, "b")
	})
	res, err := r.req.Fetch(testCtx(t), &pb.FetchRequest{Url: up.URL + "/a",
		Options: &pb.RequestOptions{Redirect: pb.RedirectMode_REDIRECT_MODE_FOLLOW}})
	if err != nil || res.GetStatusCode() != 200 {
		t.Fatalf("Fetch: %v %v", res.GetStatusCode(), err)
	}
	spans := r.waitSpans(t, 2, clientSpans)
	a, b := spans[0], spans[1]
	for _, s := range spans {
		wantTree(t, r, s, "Fetch")
		wantEventTimes(t, s)
	}
	if a.Parent().SpanID() != b.Parent().SpanID() {
		t.Error("the hops are under different RPC spans; want both under the Fetch")
	}
	wantAttr(t, a, "url.full", up.URL+"/a")
	wantAttr(t, a, "http.response.status_code", 302)
	wantNoAttr(t, a, "http.request.resend_count")
	wantEvents(t, a, "socket socket.connect finish redirect")
	if got := eventAttrs(a, "redirect")["httpgateway.redirect.location"].AsString(); got != up.URL+"/b?sig=REDACTED&x=1" {
		t.Errorf("redirect location %q", got)
	}
	wantAttr(t, b, "url.full", up.URL+"/b?sig=REDACTED&x=1")
	wantAttr(t, b, "http.response.status_code", 200)
	wantAttr(t, b, "http.request.resend_count", 1)
	wantAttr(t, b, "network.peer.address", "127.0.0.1")
	wantEvents(t, b, "socket finish response")
	if got := eventAttrs(b, "socket")["httpgateway.socket.reused"].AsBool(); !got {
		t.Error("the second hop did not reuse the drained socket")
	}
	if b.StartTime().Before(a.EndTime()) {
		t.Errorf("hop 2 starts at %v, before hop 1 ends at %v", b.StartTime(), a.EndTime())
	}
	for _, s := range spans {
		if s.Status().Code != codes.Unset {
			t.Errorf("%s: status %v", attrs(s)["url.full"].AsString(), s.Status())
		}
	}
	if strings.Contains(r.logs.String(), "secret1") {
		t.Errorf("the log holds a signature:\n%s", r.logs.String())
	}

	tpA, tpB := tps.of("/a"), tps.of("/b")
	if len(tpA) != 1 || len(tpB) != 1 {
		t.Fatalf("traceparents /a %q /b %q, want one each", tpA, tpB)
	}
	wantTraceparent(t, "/a", tpA[0], a)
	wantTraceparent(t, "/b", tpB[0], b)
	if tpA[0] == tpB[0] {
		t.Errorf("both hops sent traceparent %s", tpA[0])
	}

	// With propagation off, no hop carries one.
	off := false
	if _, err := r.req.Fetch(testCtx(t), &pb.FetchRequest{Url: up.URL + "/a",
		Options: &pb.RequestOptions{Redirect: pb.RedirectMode_REDIRECT_MODE_FOLLOW, PropagateTraceContext: &off}}); err != nil {
		t.Fatal(err)
	}
	for _, path := range []string{"/a", "/b"} {
		if got := tps.of(path); len(got) != 2 || got[1] != "" {
			t.Errorf("propagation off: %s got traceparents %q, want the second empty", path, got)
		}
	}
}

// wantTraceparent checks that tp names span: its trace and, as the
// parent id, its span id (the upstream's parent is that attempt).
func wantTraceparent(t *testing.T, what, tp string, span sdktrace.ReadOnlySpan) {
	t.Helper()
	parts := strings.Split(tp, "-")
	if len(parts) != 4 {
		t.Errorf("%s: traceparent %q", what, tp)
		return
	}
	sc := span.SpanContext()
	if parts[1] != sc.TraceID().String() || parts[2] != sc.SpanID().String() {
		t.Errorf("%s: traceparent %s, want trace %s parent %s (its attempt's span)", what, tp, sc.TraceID(), sc.SpanID())
	}
}

func TestRedaction(t *testing.T) {
	testutil.CheckLeaks(t)
	r := startRig(t)
	var mu sync.Mutex
	var auth string
	up := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		mu.Lock()
		auth = req.Header.Get("Authorization")
		mu.Unlock()
	}))
	t.Cleanup(up.Close)
	u := strings.Replace(up.URL, "http://", "http://alice:hunter2@", 1) + "/p?X-Amz-Signature=abc123&X-Amz-Credential=AKIAXX&page=2&access_token=tok9"
	if _, err := r.req.Fetch(testCtx(t), &pb.FetchRequest{Url: u, Headers: []*pb.Header{{Name: "Cookie", Value: "session=cookie7"}}}); err != nil {
		t.Fatal(err)
	}
	mu.Lock()
	if auth == "" {
		t.Fatal("the URL's credentials did not reach the upstream as Basic auth")
	}
	mu.Unlock()
	s := r.waitSpans(t, 1, clientSpans)[0]
	want := strings.Replace(up.URL, "http://", "http://REDACTED:REDACTED@", 1) + "/p?X-Amz-Signature=REDACTED&X-Amz-Credential=REDACTED&page=2&access_token=REDACTED"
	wantAttr(t, s, "url.full", want)
	var dump strings.Builder
	for _, sp := range r.rec.Ended() {
		fmt.Fprintf(&dump, "%s %v %v\n", sp.Name(), sp.Attributes(), sp.Events())
	}
	dump.WriteString(r.logs.String())
	for _, secret := range []string{"hunter2", "abc123", "AKIAXX", "tok9", "cookie7", strings.TrimPrefix(auth, "Basic ")} {
		if strings.Contains(dump.String(), secret) {
			t.Errorf("%q appears in the spans or logs:\n%s", secret, dump.String())
		}
	}
}

func TestPropagation(t *testing.T) {
	testutil.CheckLeaks(t)
	r := startRig(t)
	up, tps := startTraceparentUpstream(t, nil)
	off := false
	if _, err := r.agents.CreateAgent(testCtx(t), &pb.CreateAgentRequest{Name: "quiet", Options: &pb.AgentOptions{PropagateTraceContext: &off}}); err != nil {
		t.Fatal(err)
	}
	on := true
	for _, in := range []*pb.FetchRequest{
		{Url: up.URL + "/default"},
		{Url: up.URL + "/request-off", Options: &pb.RequestOptions{PropagateTraceContext: &off}},
		{Url: up.URL + "/agent-off", Agent: "quiet"},
		{Url: up.URL + "/agent-off-request-on", Agent: "quiet", Options: &pb.RequestOptions{PropagateTraceContext: &on}},
	} {
		if _, err := r.req.Fetch(testCtx(t), in); err != nil {
			t.Fatal(err)
		}
	}
	spans := r.waitSpans(t, 4, clientSpans)
	seen := tps.seen()
	for i, wantHeader := range []bool{true, false, false, true} {
		tp := seen[i]
		if !wantHeader {
			if tp != "" {
				t.Errorf("request %d: traceparent %q, want none", i, tp)
			}
			continue
		}
		parts := strings.Split(tp, "-")
		if len(parts) != 4 {
			t.Fatalf("request %d: traceparent %q", i, tp)
		}
		if parts[1] != spans[i].SpanContext().TraceID().String() {
			t.Errorf("request %d: traceparent trace id %s, the caller's trace is %s", i, parts[1], spans[i].SpanContext().TraceID())
		}
		if parts[2] != spans[i].SpanContext().SpanID().String() {
			t.Errorf("request %d: traceparent parent id %s, want the HTTP span %s", i, parts[2], spans[i].SpanContext().SpanID())
		}
	}
	// The trace id the upstream saw is the caller's: the caller's CLIENT
	// span of the first Fetch is in the same trace.
	var callerTraces []string
	for _, s := range r.rec.Ended() {
		if s.SpanKind() == trace.SpanKindClient && !clientSpans(s) {
			callerTraces = append(callerTraces, s.SpanContext().TraceID().String())
		}
	}
	if !containsStr(callerTraces, strings.Split(seen[0], "-")[1]) {
		t.Errorf("upstream trace id %s is none of the caller's %v", strings.Split(seen[0], "-")[1], callerTraces)
	}
}

func containsStr(xs []string, x string) bool {
	for _, s := range xs {
		if s == x {
			return true
		}
	}
	return false
}

// TestPoolGaugesSumCallers: two callers each get their own `global`
// agent; the pool gauges, which carry no caller identity, report their
// sockets summed (an observable instrument keeps one value per attribute
// set, so observing each agent would keep only the last).
func TestPoolGaugesSumCallers(t *testing.T) {
	testutil.CheckLeaks(t)
	r := startRig(t)
	up := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) { io.WriteString(w, "hello") }))
	t.Cleanup(up.Close)
	for _, who := range []string{"alice", "bob"} {
		ctx := metadata.AppendToOutgoingContext(testCtx(t), "x-test-identity", who)
		res, err := r.req.Fetch(ctx, &pb.FetchRequest{Url: up.URL + "/x"})
		if err != nil {
			t.Fatal(err)
		}
		if res.GetReusedSocket() {
			t.Fatalf("%s reused a socket: callers must not share `global`", who)
		}
	}
	m := r.collect(t)
	idle := pointsWhere(m["http.client.open_connections"].Data.(metricdata.Sum[int64]).DataPoints, "http.connection.state", "idle")
	if len(idle) != 1 || idle[0] != 2 {
		t.Errorf("http.client.open_connections{idle} points %v, want one of 2", idle)
	}
	free := pointsWhere(m["httpgateway.agent.sockets"].Data.(metricdata.Gauge[int64]).DataPoints, "state", "free")
	if len(free) != 1 || free[0] != 2 {
		t.Errorf("httpgateway.agent.sockets{free} points %v, want one of 2", free)
	}
}

// TestRefusedRequest checks that a request the engine refuses to create
// (its options fail validation, after the observer was made) ends its span
// with the error and takes itself out of http.client.active_requests.
func TestRefusedRequest(t *testing.T) {
	testutil.CheckLeaks(t)
	tests := []struct {
		name string
		url  string
		code string
	}{
		{name: "bad port", url: "http://:99999/", code: "ERR_INVALID_URL"},
		{name: "bad protocol", url: "ftp://127.0.0.1/", code: "ERR_INVALID_PROTOCOL"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := startRig(t)
			_, err := r.req.Fetch(testCtx(t), &pb.FetchRequest{Url: tt.url})
			if st, _ := status.FromError(err); st.Code() != grpccodes.InvalidArgument || !strings.Contains(st.Message(), tt.code) {
				t.Fatalf("Fetch: %v, want InvalidArgument %s", err, tt.code)
			}
			// The refusal is on the RPC's goroutine: by Fetch's answer the
			// request is out of the count and its span ended.
			active, ok := r.collect(t)["http.client.active_requests"].Data.(metricdata.Sum[int64])
			if !ok || len(active.DataPoints) == 0 {
				t.Fatal("the refused request was never counted in http.client.active_requests")
			}
			for _, dp := range active.DataPoints {
				if dp.Value != 0 {
					t.Errorf("http.client.active_requests %d after the refused request, want 0", dp.Value)
				}
			}
			var s sdktrace.ReadOnlySpan
			for _, e := range r.rec.Ended() {
				if clientSpans(e) {
					s = e
				}
			}
			if s == nil {
				t.Fatal("the refused request's span was not ended")
			}
			wantTree(t, r, s, "Fetch")
			wantAttr(t, s, "error.type", tt.code)
			wantEvents(t, s, "error")
			if s.Status().Code != codes.Error || !strings.HasPrefix(s.Status().Description, tt.code) {
				t.Errorf("status %v, want Error %s", s.Status(), tt.code)
			}
			if lines := logLines(t, r, "outbound request"); len(lines) != 1 || lines[0]["error.code"] != tt.code {
				t.Errorf("summary %v", lines)
			}
		})
	}
}

// pointsWhere returns the values of the points whose attribute key is value.
func pointsWhere(dps []metricdata.DataPoint[int64], key, value string) []int64 {
	var out []int64
	for _, dp := range dps {
		if v, _ := dp.Attributes.Value(attribute.Key(key)); v.AsString() == value {
			out = append(out, dp.Value)
		}
	}
	return out
}
