package telemetry_test

import (
	"bytes"
	"context"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"sync"
	"testing"
	"time"

	"go.opentelemetry.io/contrib/instrumentation/google.golang.org/grpc/otelgrpc"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/propagation"
	sdkmetric "go.opentelemetry.io/otel/sdk/metric"
	"go.opentelemetry.io/otel/sdk/metric/metricdata"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"
	"go.opentelemetry.io/otel/trace"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/metadata"

	pb "github.com/httpgateway/httpgateway/gen/httpgateway/v1"
	"github.com/httpgateway/httpgateway/internal/auth"
	"github.com/httpgateway/httpgateway/internal/config"
	"github.com/httpgateway/httpgateway/internal/httpengine"
	"github.com/httpgateway/httpgateway/internal/rpc"
	"github.com/httpgateway/httpgateway/internal/server"
	"github.com/httpgateway/httpgateway/internal/telemetry"
)

// lockedBuffer is a log sink safe for the engine's goroutines.
type lockedBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

// endNotifier wakes waitSpan whenever a span ends.
type endNotifier struct{ c chan struct{} }

func (n endNotifier) OnStart(context.Context, sdktrace.ReadWriteSpan) {}
func (n endNotifier) OnEnd(sdktrace.ReadOnlySpan) {
	select {
	case n.c <- struct{}{}:
	default:
	}
}
func (n endNotifier) Shutdown(context.Context) error   { return nil }
func (n endNotifier) ForceFlush(context.Context) error { return nil }

// rig is the rpc service with telemetry on a loopback gRPC server, and a
// client whose otelgrpc handler makes the caller's span.
type rig struct {
	rec    *tracetest.SpanRecorder
	ended  chan struct{}
	reader *sdkmetric.ManualReader
	logs   *lockedBuffer
	req    pb.ClientRequestServiceClient
	agents pb.AgentServiceClient
	addr   string // the gateway's gRPC address
}

// startRig starts it; everything stops at cleanup. Call
// testutil.CheckLeaks first. with, if given, adjusts the rpc options.
func startRig(t *testing.T, with ...func(*rpc.Options)) *rig {
	t.Helper()
	r := &rig{rec: tracetest.NewSpanRecorder(), ended: make(chan struct{}, 1), reader: sdkmetric.NewManualReader(), logs: &lockedBuffer{}}
	tp := sdktrace.NewTracerProvider(sdktrace.WithSpanProcessor(r.rec), sdktrace.WithSpanProcessor(endNotifier{r.ended}))
	mp := sdkmetric.NewMeterProvider(sdkmetric.WithReader(r.reader))
	tel, err := telemetry.New(telemetry.Options{TracerProvider: tp, MeterProvider: mp,
		Logger: slog.New(telemetry.LogHandler(slog.NewJSONHandler(r.logs, nil)))})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { // after the gateway's cleanup: spans end as it stops
		_ = tp.Shutdown(context.Background())
		_ = mp.Shutdown(context.Background())
	})
	cc := startGateway(t, tel, func(o *rpc.Options) {
		o.FinishedLinger = time.Millisecond
		for _, f := range with {
			f(o)
		}
	}, grpc.WithStatsHandler(otelgrpc.NewClientHandler(otelgrpc.WithTracerProvider(tp), otelgrpc.WithPropagators(propagation.TraceContext{}))))
	r.req, r.agents, r.addr = pb.NewClientRequestServiceClient(cc), pb.NewAgentServiceClient(cc), cc.Target()
	return r
}

// startGateway starts the rpc service with tel's observer, agent watch
// and server handler on a loopback gRPC server (with, if set, adjusts the
// rpc options), and returns a client connection with the dial options
// given; everything stops at cleanup.
func startGateway(t *testing.T, tel *telemetry.Telemetry, with func(*rpc.Options), dial ...grpc.DialOption) *grpc.ClientConn {
	t.Helper()
	o := rpc.Options{
		NewObserver: func(ctx context.Context, ri *rpc.RequestInfo) httpengine.Observer {
			return tel.NewObserver(ctx, telemetry.Request{Options: ri.Options, Agent: ri.Agent, Propagate: ri.Propagate})
		},
		AgentCreated: tel.WatchAgent,
	}
	if with != nil {
		with(&o)
	}
	svc := rpc.New(o)
	if err := tel.WatchAgents(svc.Agents); err != nil {
		t.Fatal(err)
	}
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := grpc.NewServer(append(serverOptions(tel), grpc.ChainUnaryInterceptor(testIdentity))...)
	svc.Register(srv)
	served := make(chan struct{})
	go func() { // ends when srv stops
		defer close(served)
		_ = srv.Serve(lis)
	}()
	cc, err := grpc.NewClient(lis.Addr().String(), append([]grpc.DialOption{grpc.WithTransportCredentials(insecure.NewCredentials())}, dial...)...)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		_ = cc.Close()
		srv.Stop()
		<-served
		svc.Close()
	})
	return cc
}

func testCtx(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	t.Cleanup(cancel)
	return ctx
}

// waitSpans waits until n ended spans satisfy match, and returns them in
// end order.
func (r *rig) waitSpans(t *testing.T, n int, match func(sdktrace.ReadOnlySpan) bool) []sdktrace.ReadOnlySpan {
	t.Helper()
	timeout := time.After(10 * time.Second)
	for {
		var got []sdktrace.ReadOnlySpan
		for _, s := range r.rec.Ended() {
			if match(s) {
				got = append(got, s)
			}
		}
		if len(got) >= n {
			return got
		}
		select {
		case <-r.ended:
		case <-timeout:
			t.Fatalf("waited for %d spans, have %d of %d ended", n, len(got), len(r.rec.Ended()))
		}
	}
}

// clientSpans are the HTTP CLIENT spans the gateway made (not otelgrpc's).
func clientSpans(s sdktrace.ReadOnlySpan) bool {
	return s.SpanKind() == trace.SpanKindClient && s.InstrumentationScope().Name == "github.com/httpgateway/httpgateway/internal/telemetry"
}

func attrs(s sdktrace.ReadOnlySpan) map[attribute.Key]attribute.Value {
	m := map[attribute.Key]attribute.Value{}
	for _, kv := range s.Attributes() {
		m[kv.Key] = kv.Value
	}
	return m
}

func eventNames(s sdktrace.ReadOnlySpan) []string {
	var out []string
	for _, e := range s.Events() {
		out = append(out, e.Name)
	}
	return out
}

// eventAttrs returns the attributes of the first event called name, nil
// when there is none.
func eventAttrs(s sdktrace.ReadOnlySpan, name string) map[attribute.Key]attribute.Value {
	for _, e := range s.Events() {
		if e.Name == name {
			m := map[attribute.Key]attribute.Value{}
			for _, kv := range e.Attributes {
				m[kv.Key] = kv.Value
			}
			return m
		}
	}
	return nil
}

// collect reads the metrics now.
func (r *rig) collect(t *testing.T) map[string]metricdata.Metrics {
	t.Helper()
	var rm metricdata.ResourceMetrics
	if err := r.reader.Collect(context.Background(), &rm); err != nil {
		t.Fatal(err)
	}
	out := map[string]metricdata.Metrics{}
	for _, sm := range rm.ScopeMetrics {
		for _, m := range sm.Metrics {
			out[m.Name] = m
		}
	}
	return out
}

// traceparents records the traceparent header of each request an
// upstream gets, in arrival order and per path.
type traceparents struct {
	mu     sync.Mutex
	all    []string
	byPath map[string][]string
}

// startTraceparentUpstream starts an httptest server that records each
// request's traceparent, then runs h; it stops at cleanup.
func startTraceparentUpstream(t *testing.T, h http.HandlerFunc) (*httptest.Server, *traceparents) {
	t.Helper()
	rec := &traceparents{byPath: map[string][]string{}}
	up := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		tp := req.Header.Get("traceparent")
		rec.mu.Lock()
		rec.all = append(rec.all, tp)
		rec.byPath[req.URL.Path] = append(rec.byPath[req.URL.Path], tp)
		rec.mu.Unlock()
		if h != nil {
			h(w, req)
		}
	}))
	t.Cleanup(up.Close)
	return up, rec
}

// seen returns the traceparents so far, in arrival order.
func (r *traceparents) seen() []string {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]string(nil), r.all...)
}

// of returns the traceparents path got so far, in arrival order.
func (r *traceparents) of(path string) []string {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]string(nil), r.byPath[path]...)
}

// serverOptions are the gateway's call interceptors over tel, as serve
// installs them (first in the chain).
func serverOptions(tel *telemetry.Telemetry) []grpc.ServerOption {
	return []grpc.ServerOption{grpc.ChainUnaryInterceptor(tel.UnaryServerInterceptor()),
		grpc.ChainStreamInterceptor(tel.StreamServerInterceptor())}
}

// testIdentity makes the caller the identity named in the metadata
// "x-test-identity", as the auth interceptor would after checking a token;
// without it the caller is anonymous.
func testIdentity(ctx context.Context, req any, _ *grpc.UnaryServerInfo, next grpc.UnaryHandler) (any, error) {
	if v := metadata.ValueFromIncomingContext(ctx, "x-test-identity"); len(v) == 1 {
		ctx = auth.NewContext(ctx, auth.Identity{Name: v[0], Method: auth.MethodToken})
	}
	return next(ctx, req)
}

// serveGateway serves svc with the gateway's own server (server.New on
// cfg, listening on a loopback port, with opts) and returns a client
// connection to it with the dial options given; the connection, the
// server and svc stop at cleanup.
func serveGateway(tb testing.TB, cfg config.Config, svc *rpc.Service, opts []server.Option, dial ...grpc.DialOption) *grpc.ClientConn {
	tb.Helper()
	cfg.Listen = "127.0.0.1:0"
	srv, err := server.New(cfg, svc.Register, opts...)
	if err != nil {
		tb.Fatal(err)
	}
	if err := srv.Listen(); err != nil {
		tb.Fatal(err)
	}
	ctx, stop := context.WithCancel(context.Background())
	served := make(chan error, 1)
	go func() { served <- srv.Serve(ctx) }() // ends at stop
	tb.Cleanup(func() {
		stop()
		if err := <-served; err != nil {
			tb.Error(err)
		}
		svc.Close()
	})
	cc, err := grpc.NewClient(srv.Addr().String(), append([]grpc.DialOption{grpc.WithTransportCredentials(insecure.NewCredentials())}, dial...)...)
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { cc.Close() })
	return cc
}
