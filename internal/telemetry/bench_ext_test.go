package telemetry_test

import (
	"context"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strconv"
	"syscall"
	"testing"
	"time"

	"go.opentelemetry.io/contrib/instrumentation/google.golang.org/grpc/otelgrpc"
	"go.opentelemetry.io/otel/propagation"
	sdkmetric "go.opentelemetry.io/otel/sdk/metric"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"google.golang.org/grpc"
	"google.golang.org/grpc/metadata"

	pb "github.com/httpgateway/httpgateway/gen/httpgateway/v1"
	"github.com/httpgateway/httpgateway/internal/config"
	"github.com/httpgateway/httpgateway/internal/httpengine"
	"github.com/httpgateway/httpgateway/internal/rpc"
	"github.com/httpgateway/httpgateway/internal/server"
	"github.com/httpgateway/httpgateway/internal/telemetry"
)

// discardExporter drops spans after the batch processor handed them over:
// the cost measured is the gateway's and the SDK's, not an exporter's I/O.
type discardExporter struct{}

func (discardExporter) ExportSpans(context.Context, []sdktrace.ReadOnlySpan) error { return nil }
func (discardExporter) Shutdown(context.Context) error                             { return nil }

// cpuTime is the process's user+system CPU time so far.
func cpuTime() time.Duration {
	var ru syscall.Rusage
	_ = syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// benchMaxMsg is the message size limit of the benchmark's server and
// client, as bench/ runs the gateway (--max-send-msg-size 160MiB).
const benchMaxMsg = 160 << 20

// startBenchGateway starts the gateway as serve runs it (server.New on the
// default configuration: auth, access log at warn, stream workers, flow
// control windows; Fetch bodies up to benchMaxMsg) on loopback, in one of
// these modes:
//   - off: no call interceptors, no observer (the gateway without this
//     package);
//   - noexport: what serve runs with nothing configured: the call
//     interceptors and the observer over no-op providers (the caller's
//     trace context continued and propagated, no span), the summary log
//     line to a discarding JSON handler at warn, as bench/ runs it;
//   - on: the same over a recording tracer provider behind a batch
//     processor (to an exporter that drops the spans) and a meter provider
//     with a reader;
//   - rpconly: on's providers and call interceptors (the SERVER span and
//     rpc.server.call.duration) without the observer: what the RPC's
//     instrumentation costs, not the HTTP client span's;
//   - unsampled: on, for a caller whose trace is not sampled (what most
//     requests cost under a ratio sampler: no span records, the metrics
//     do);
//   - otelgrpc: on, with otelgrpc's server stats handler making the SERVER
//     span and the RPC metric instead of the call interceptors (what
//     rpcserver.go replaced, kept for the comparison).
//
// It returns a client, and a func that waits until the spans ended so far
// went through the batch processor (a no-op but with a tracer provider);
// everything stops when b ends.
func startBenchGateway(b *testing.B, mode string) (pb.ClientRequestServiceClient, func()) {
	o := rpc.Options{MaxFetchResponseBytes: benchMaxMsg - 1<<20}
	log := slog.New(telemetry.LogHandler(slog.NewJSONHandler(io.Discard, &slog.HandlerOptions{Level: slog.LevelWarn})))
	sopts := []server.Option{server.WithLogger(log)}
	flush := func() {}
	if mode != "off" {
		to := telemetry.Options{Logger: log}
		if mode != "noexport" {
			tp := sdktrace.NewTracerProvider(sdktrace.WithBatcher(discardExporter{}))
			flush = func() { _ = tp.ForceFlush(context.Background()) }
			mp := sdkmetric.NewMeterProvider(sdkmetric.WithReader(sdkmetric.NewManualReader()))
			b.Cleanup(func() { _ = tp.Shutdown(context.Background()) })
			b.Cleanup(func() { _ = mp.Shutdown(context.Background()) })
			to.TracerProvider, to.MeterProvider = tp, mp
		}
		tel, err := telemetry.New(to)
		if err != nil {
			b.Fatal(err)
		}
		if mode != "rpconly" {
			o.NewObserver = func(ctx context.Context, ri *rpc.RequestInfo) httpengine.Observer {
				return tel.NewObserver(ctx, telemetry.Request{Options: ri.Options, Agent: ri.Agent, Propagate: ri.Propagate})
			}
			o.AgentCreated = tel.WatchAgent
		}
		if mode == "otelgrpc" {
			sopts = append(sopts, server.WithServerOptions(grpc.StatsHandler(otelgrpc.NewServerHandler(
				otelgrpc.WithTracerProvider(to.TracerProvider), otelgrpc.WithMeterProvider(to.MeterProvider),
				otelgrpc.WithPropagators(propagation.TraceContext{})))))
		} else {
			sopts = append(sopts, server.WithCallInterceptors(tel.UnaryServerInterceptor(), tel.StreamServerInterceptor()))
		}
	}
	cfg := config.Default()
	cfg.LogLevel = slog.LevelWarn
	cfg.MaxRecvMsgSize, cfg.MaxSendMsgSize = benchMaxMsg, benchMaxMsg
	cc := serveGateway(b, cfg, rpc.New(o), sopts,
		grpc.WithDefaultCallOptions(grpc.MaxCallRecvMsgSize(benchMaxMsg), grpc.MaxCallSendMsgSize(benchMaxMsg)))
	return pb.NewClientRequestServiceClient(cc), flush
}

// tracedCtx is a caller's context with a traceparent, sampled but in
// mode unsampled: the caller is traced in every mode; its own
// instrumentation is not the gateway's cost, so the client has none.
func tracedCtx(mode string) context.Context {
	tp := "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01"
	if mode == "unsampled" {
		tp = tp[:len(tp)-2] + "00"
	}
	return metadata.AppendToOutgoingContext(context.Background(), "traceparent", tp)
}

// BenchmarkFetchTracing measures a small Fetch (GET, 5-byte body, keep-alive)
// through the real gRPC server from a traced caller, in each mode of
// startBenchGateway, one after the other. cpu-ns/op is the whole process's
// CPU (gateway, client and upstream) per request, from getrusage; compare
// the modes in the same run (BenchmarkFetchTracingInterleaved does it
// side by side).
func BenchmarkFetchTracing(b *testing.B) {
	up := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) { io.WriteString(w, "hello") }))
	defer up.Close()
	for _, mode := range []string{"off", "noexport", "on", "rpconly", "unsampled", "otelgrpc"} {
		b.Run(mode, func(b *testing.B) {
			c, _ := startBenchGateway(b, mode)
			ctx := tracedCtx(mode)
			in := &pb.FetchRequest{Url: up.URL + "/x"}
			if _, err := c.Fetch(ctx, in); err != nil { // warm: connections up
				b.Fatal(err)
			}
			b.ReportAllocs()
			b.ResetTimer()
			cpu0 := cpuTime()
			for i := 0; i < b.N; i++ {
				if _, err := c.Fetch(ctx, in); err != nil {
					b.Fatal(err)
				}
			}
			b.StopTimer()
			b.ReportMetric(float64(cpuTime()-cpu0)/float64(b.N), "cpu-ns/op")
		})
	}
}

// BenchmarkFetchTracingInterleaved is BenchmarkFetchTracing's modes side
// by side: a gateway per mode, all running, take turns, a batch of
// requests each, in an order that rotates every round, so that a shared
// machine's drift hits every mode alike. Each op is one request in each
// mode; it reports each mode's cpu-ns per request and its overhead over
// off in percent. A batch is long enough for the garbage collection its
// allocations cause to run within it (the modes share one heap, so the
// collector's cost spreads somewhat across them), and a batch with a
// tracer provider ends when the batch processor has taken its spans.
func BenchmarkFetchTracingInterleaved(b *testing.B) {
	up := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) { io.WriteString(w, "hello") }))
	defer up.Close()
	modes := []string{"off", "noexport", "on", "rpconly", "unsampled", "otelgrpc"}
	type gw struct {
		c     pb.ClientRequestServiceClient
		ctx   context.Context
		flush func()
		cpu   time.Duration
	}
	gws := make([]*gw, len(modes))
	in := &pb.FetchRequest{Url: up.URL + "/x"}
	for i, m := range modes {
		c, flush := startBenchGateway(b, m)
		ctx := tracedCtx(m)
		if _, err := c.Fetch(ctx, in); err != nil { // warm: connections up
			b.Fatal(err)
		}
		gws[i] = &gw{c: c, ctx: ctx, flush: flush}
	}
	const batch = 256
	b.ReportAllocs()
	b.ResetTimer()
	for done, round := 0, 0; done < b.N; round++ {
		n := min(batch, b.N-done)
		for k := range gws {
			g := gws[(round+k)%len(gws)]
			cpu0 := cpuTime()
			for i := 0; i < n; i++ {
				if _, err := g.c.Fetch(g.ctx, in); err != nil {
					b.Fatal(err)
				}
			}
			g.flush()
			g.cpu += cpuTime() - cpu0
		}
		done += n
	}
	b.StopTimer()
	per := func(g *gw) float64 { return float64(g.cpu) / float64(b.N) }
	for i, m := range modes {
		b.ReportMetric(per(gws[i]), m+"-cpu-ns/op")
	}
	for i, m := range modes[1:] {
		b.ReportMetric(100*(per(gws[i+1])/per(gws[0])-1), m+"-overhead-%")
	}
}

// BenchmarkFetchParallel is BenchmarkFetchTracing's noexport mode with 32
// callers at once (bench/'s small_get_c32), and the same for a 1 MiB body
// (download_1m_c8, with 8 callers): the gateway's throughput, for
// profiling (-cpuprofile, -memprofile).
func BenchmarkFetchParallel(b *testing.B) {
	big := make([]byte, 1<<20)
	up := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/1m" {
			w.Header().Set("Content-Length", strconv.Itoa(len(big)))
			_, _ = w.Write(big)
			return
		}
		io.WriteString(w, "hello")
	}))
	defer up.Close()
	for _, tc := range []struct {
		name    string
		path    string
		callers int
	}{{"small_c32", "/x", 32}, {"1m_c8", "/1m", 8}} {
		b.Run(tc.name, func(b *testing.B) {
			c, _ := startBenchGateway(b, "noexport")
			ctx := tracedCtx("noexport")
			in := &pb.FetchRequest{Url: up.URL + tc.path}
			if _, err := c.Fetch(ctx, in); err != nil {
				b.Fatal(err)
			}
			b.ReportAllocs()
			b.SetParallelism((tc.callers + 1) / 2)
			b.ResetTimer()
			cpu0 := cpuTime()
			b.RunParallel(func(pb *testing.PB) {
				for pb.Next() {
					if _, err := c.Fetch(ctx, in); err != nil {
						b.Error(err)
						return
					}
				}
			})
			b.StopTimer()
			b.ReportMetric(float64(cpuTime()-cpu0)/float64(b.N), "cpu-ns/op")
		})
	}
}
