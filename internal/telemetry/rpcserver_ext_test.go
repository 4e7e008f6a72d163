package telemetry_test

import (
	"context"
	"errors"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strconv"
	"testing"

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

	st, err := r.req.Exchange(testCtx(t))
	if err != nil {
		t.Fatal(err)
	}
	if err := st.Send(&pb.ExchangeRequest{Op: &pb.ExchangeRequest_Start{Start: &pb.RequestOptions{Url: up.URL + "/s"}}}); err != nil {
		t.Fatal(err)
	}
	if err := st.Send(&pb.ExchangeRequest{Op: &pb.ExchangeRequest_End{End: &pb.EndOp{}}}); err != nil {
		t.Fatal(err)
	}
	if err := st.CloseSend(); err != nil {
		t.Fatal(err)
	}
	for {
		if _, err := st.Recv(); err != nil {
			if !errors.Is(err, io.EOF) {
				t.Fatal(err)
			}
			break
		}
	}
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
