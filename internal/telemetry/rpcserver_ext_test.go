package telemetry_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"sync"
	"testing"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/sdk/metric/metricdata"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"
	"go.opentelemetry.io/otel/trace"
	"google.golang.org/grpc"
	grpccodes "google.golang.org/grpc/codes"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"

	pb "github.com/httpgateway/httpgateway/gen/httpgateway/v1"
	"github.com/httpgateway/httpgateway/internal/config"
	"github.com/httpgateway/httpgateway/internal/rpc"
	"github.com/httpgateway/httpgateway/internal/server"
	"github.com/httpgateway/httpgateway/internal/telemetry"
	"github.com/httpgateway/httpgateway/internal/testutil"
)

// serverSpans are the gateway's RPC SERVER spans.
func serverSpans(s sdktrace.ReadOnlySpan) bool { return s.SpanKind() == trace.SpanKindServer }

// TestRPCServerSpan: each call's SERVER span carries the RPC conventions'
// attributes and the code it ended with; the status is Error only for a
// code that is the server's fault (UNAVAILABLE here), not for the
// caller's (INVALID_ARGUMENT); rpc.server.call.duration counts the calls
// per method and code, with error.type on the server's faults.
func TestRPCServerSpan(t *testing.T) {
	testutil.CheckLeaks(t)
	r := startRig(t)
	up := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) { io.WriteString(w, "hello") }))
	t.Cleanup(up.Close)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	refused := "http://" + ln.Addr().String() + "/"
	ln.Close()

	calls := []struct {
		url      string
		code     grpccodes.Code
		name     string
		errorSet bool
	}{
		{up.URL + "/x", grpccodes.OK, "OK", false},
		{"http://[::1", grpccodes.InvalidArgument, "INVALID_ARGUMENT", false},
		{refused, grpccodes.Unavailable, "UNAVAILABLE", true},
	}
	_, gwPort := hostPort(t, "http://"+r.addr)
	for i, c := range calls {
		_, err := r.req.Fetch(testCtx(t), &pb.FetchRequest{Url: c.url})
		if status.Code(err) != c.code {
			t.Fatalf("Fetch %s: %v, want %v", c.url, err, c.code)
		}
		s := r.waitSpans(t, i+1, serverSpans)[i]
		if s.Name() != "httpgateway.v1.ClientRequestService/Fetch" {
			t.Errorf("span name %q", s.Name())
		}
		wantAttr(t, s, "rpc.system.name", "grpc")
		wantAttr(t, s, "rpc.method", "httpgateway.v1.ClientRequestService/Fetch")
		wantAttr(t, s, "rpc.response.status_code", c.name)
		wantAttr(t, s, "server.address", "127.0.0.1")
		wantAttr(t, s, "server.port", gwPort)
		wantAttr(t, s, "network.peer.address", "127.0.0.1")
		if c.errorSet != (s.Status().Code == codes.Error) {
			t.Errorf("%s: span status %v", c.name, s.Status())
		}
		if c.errorSet && s.Status().Description != status.Convert(err).Message() {
			t.Errorf("%s: status description %q, want %q", c.name, s.Status().Description, status.Convert(err).Message())
		}
	}

	m := r.collect(t)
	points := map[string]metricdata.HistogramDataPoint[float64]{}
	for _, dp := range m["rpc.server.call.duration"].Data.(metricdata.Histogram[float64]).DataPoints {
		code, _ := dp.Attributes.Value("rpc.response.status_code")
		if method, _ := dp.Attributes.Value("rpc.method"); method.AsString() != "httpgateway.v1.ClientRequestService/Fetch" {
			t.Errorf("duration point for method %q", method.AsString())
		}
		points[code.AsString()] = dp
	}
	for _, c := range calls {
		dp, ok := points[c.name]
		if !ok || dp.Count != 1 {
			t.Errorf("rpc.server.call.duration{%s}: %+v, want one call", c.name, dp)
			continue
		}
		et, has := dp.Attributes.Value("error.type")
		if has != c.errorSet || (has && et.AsString() != c.name) {
			t.Errorf("rpc.server.call.duration{%s}: error.type %v", c.name, et.AsInterface())
		}
	}
}

// TestRPCServerStreamSpan: a streaming call's SERVER span is the parent
// of the HTTP span made on the stream, and lasts until the stream ends.
func TestRPCServerStreamSpan(t *testing.T) {
	testutil.CheckLeaks(t)
	r := startRig(t)
	up := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) { io.WriteString(w, "hello") }))
	t.Cleanup(up.Close)

	exchangeGet(t, r.req, up.URL+"/s")
	httpSpan := r.waitSpans(t, 1, clientSpans)[0]
	wantTree(t, r, httpSpan, "Exchange")
	server := r.waitSpans(t, 1, serverSpans)[0]
	if server.EndTime().Before(httpSpan.EndTime()) {
		t.Errorf("SERVER span ended at %v, before its HTTP span (%v)", server.EndTime(), httpSpan.EndTime())
	}
	wantAttr(t, server, "rpc.response.status_code", "OK")
}

// TestRPCServerSkipsHealth: health checks get no span and keep the
// context they came with; other calls continue the caller's trace.
func TestRPCServerSkipsHealth(t *testing.T) {
	rec := tracetest.NewSpanRecorder()
	tp := sdktrace.NewTracerProvider(sdktrace.WithSpanProcessor(rec))
	t.Cleanup(func() { _ = tp.Shutdown(context.Background()) })
	tel, err := telemetry.New(telemetry.Options{TracerProvider: tp})
	if err != nil {
		t.Fatal(err)
	}
	const traceID = "0af7651916cd43dd8448eb211c80319c"
	ctx := metadata.NewIncomingContext(context.Background(), metadata.Pairs("traceparent", "00-"+traceID+"-b7ad6b7169203331-01"))
	in := tel.UnaryServerInterceptor()
	for _, method := range []string{"/grpc.health.v1.Health/Check", "/httpgateway.v1.ClientRequestService/Fetch"} {
		var seen trace.SpanContext
		_, err := in(ctx, nil, &grpc.UnaryServerInfo{FullMethod: method}, func(ctx context.Context, _ any) (any, error) {
			seen = trace.SpanContextFromContext(ctx)
			return nil, nil
		})
		if err != nil {
			t.Fatal(err)
		}
		health := method == "/grpc.health.v1.Health/Check"
		if health && seen.IsValid() {
			t.Errorf("%s: handler ran in span %v, want none", method, seen)
		}
		if !health && seen.TraceID().String() != traceID {
			t.Errorf("%s: handler ran in trace %v, want the caller's %s", method, seen.TraceID(), traceID)
		}
	}
	if got := rec.Ended(); len(got) != 1 || got[0].Name() != "httpgateway.v1.ClientRequestService/Fetch" {
		names := make([]string, len(got))
		for i, s := range got {
			names[i] = s.Name() + " " + strconv.Itoa(int(s.SpanKind()))
		}
		t.Errorf("spans %v, want only the Fetch's", names)
	}
}

// attrSampler samples everything and keeps the attributes each span was
// started with, by name.
type attrSampler struct {
	mu    sync.Mutex
	start map[string][]attribute.KeyValue
}

func (s *attrSampler) ShouldSample(p sdktrace.SamplingParameters) sdktrace.SamplingResult {
	s.mu.Lock()
	s.start[p.Name] = p.Attributes
	s.mu.Unlock()
	return sdktrace.SamplingResult{Decision: sdktrace.RecordAndSample}
}

func (*attrSampler) Description() string { return "attrSampler" }

// TestRPCServerCodes: a handler's context error is recorded as gRPC
// answers it (CANCELLED, not an Error; DEADLINE_EXCEEDED, an Error), a
// plain error as UNKNOWN; rpc.system.name and rpc.method are there when the
// span starts, for samplers.
func TestRPCServerCodes(t *testing.T) {
	rec := tracetest.NewSpanRecorder()
	smp := &attrSampler{start: map[string][]attribute.KeyValue{}}
	tp := sdktrace.NewTracerProvider(sdktrace.WithSpanProcessor(rec), sdktrace.WithSampler(smp))
	t.Cleanup(func() { _ = tp.Shutdown(context.Background()) })
	tel, err := telemetry.New(telemetry.Options{TracerProvider: tp})
	if err != nil {
		t.Fatal(err)
	}
	in := tel.UnaryServerInterceptor()
	for i, tc := range []struct {
		err      error
		code     string
		errorSet bool
	}{
		{context.Canceled, "CANCELLED", false},
		{fmt.Errorf("upstream: %w", context.DeadlineExceeded), "DEADLINE_EXCEEDED", true},
		{errors.New("plain"), "UNKNOWN", true},
		{status.Error(grpccodes.NotFound, "no such handle"), "NOT_FOUND", false},
	} {
		method := "/httpgateway.v1.ClientRequestService/M" + strconv.Itoa(i)
		_, err := in(context.Background(), nil, &grpc.UnaryServerInfo{FullMethod: method}, func(context.Context, any) (any, error) {
			return nil, tc.err
		})
		if err != tc.err {
			t.Fatalf("interceptor returned %v, want the handler's %v", err, tc.err)
		}
		spans := rec.Ended()
		s := spans[len(spans)-1]
		wantAttr(t, s, "rpc.response.status_code", tc.code)
		if tc.errorSet != (s.Status().Code == codes.Error) {
			t.Errorf("%s: span status %v", tc.code, s.Status())
		}
		start := map[attribute.Key]string{}
		smp.mu.Lock()
		for _, kv := range smp.start[s.Name()] {
			start[kv.Key] = kv.Value.String()
		}
		smp.mu.Unlock()
		if start["rpc.system.name"] != "grpc" || start["rpc.method"] != method[1:] {
			t.Errorf("%s: started with %v, want rpc.system.name and rpc.method", s.Name(), start)
		}
	}
}

// TestRPCServerAccessLog: the gateway's server (server.New, the call
// interceptors first, as serve installs them) logs each call's "finished
// call" line in the call's SERVER span, unary and streaming alike.
func TestRPCServerAccessLog(t *testing.T) {
	testutil.CheckLeaks(t)
	rec := tracetest.NewSpanRecorder()
	tp := sdktrace.NewTracerProvider(sdktrace.WithSpanProcessor(rec))
	t.Cleanup(func() { _ = tp.Shutdown(context.Background()) })
	logs := &lockedBuffer{}
	log := slog.New(telemetry.LogHandler(slog.NewJSONHandler(logs, nil)))
	tel, err := telemetry.New(telemetry.Options{TracerProvider: tp, Logger: log})
	if err != nil {
		t.Fatal(err)
	}
	cc := serveGateway(t, config.Default(), rpc.New(rpc.Options{}), []server.Option{server.WithLogger(log),
		server.WithCallInterceptors(tel.UnaryServerInterceptor(), tel.StreamServerInterceptor())})
	client := pb.NewClientRequestServiceClient(cc)
	up := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) { io.WriteString(w, "hello") }))
	t.Cleanup(up.Close)

	if _, err := client.Fetch(testCtx(t), &pb.FetchRequest{Url: up.URL + "/u"}); err != nil {
		t.Fatal(err)
	}
	exchangeGet(t, client, up.URL+"/s")

	spans := map[string]sdktrace.ReadOnlySpan{}
	for _, s := range rec.Ended() {
		if s.SpanKind() == trace.SpanKindServer {
			spans[s.Name()] = s
		}
	}
	lines := map[string]map[string]any{}
	for _, l := range strings.Split(strings.TrimSpace(logs.String()), "\n") {
		var m map[string]any
		if err := json.Unmarshal([]byte(l), &m); err != nil {
			t.Fatalf("log line %q: %v", l, err)
		}
		if method, ok := m["grpc.method"].(string); ok && m["msg"] == "finished call" {
			lines[method] = m
		}
	}
	for _, method := range []string{"Fetch", "Exchange"} {
		s, l := spans["httpgateway.v1.ClientRequestService/"+method], lines[method]
		if s == nil || l == nil {
			t.Fatalf("%s: span %v, access log line %v", method, s != nil, l)
		}
		if l["trace_id"] != s.SpanContext().TraceID().String() || l["span_id"] != s.SpanContext().SpanID().String() {
			t.Errorf("%s: access log line in %v/%v, want the SERVER span's %s/%s", method, l["trace_id"], l["span_id"],
				s.SpanContext().TraceID(), s.SpanContext().SpanID())
		}
	}
}

// exchangeGet makes a GET of url on an Exchange stream and reads the
// stream to its end.
func exchangeGet(t *testing.T, client pb.ClientRequestServiceClient, url string) {
	t.Helper()
	st, err := client.Exchange(testCtx(t))
	if err != nil {
		t.Fatal(err)
	}
	for _, op := range []*pb.ExchangeRequest{
		{Op: &pb.ExchangeRequest_Start{Start: &pb.RequestOptions{Url: url}}},
		{Op: &pb.ExchangeRequest_End{End: &pb.EndOp{}}},
	} {
		if err := st.Send(op); err != nil {
			t.Fatal(err)
		}
	}
	if err := st.CloseSend(); err != nil {
		t.Fatal(err)
	}
	for {
		if _, err := st.Recv(); err != nil {
			if !errors.Is(err, io.EOF) {
				t.Fatal(err)
			}
			return
		}
	}
}
