package telemetry_test

import (
	"context"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"strconv"
	"syscall"
	"testing"
	"time"

	sdkmetric "go.opentelemetry.io/otel/sdk/metric"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/metadata"

	pb "github.com/httpgateway/httpgateway/gen/httpgateway/v1"
	"github.com/httpgateway/httpgateway/internal/httpengine"
	"github.com/httpgateway/httpgateway/internal/rpc"
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

// startBenchGateway starts the rpc service on a loopback gRPC server in
// one of three modes: off (no stats handler, no observer: the gateway
// before this package); noexport (what serve runs with nothing
// configured: otelgrpc and the observer over no-op providers, trace
// context propagated, the summary log line to a discarding JSON handler at
// warn, as bench/ runs it); on (the same with a recording tracer provider
// behind a batch processor and a meter provider with a reader). It returns
// a client; everything stops when b ends.
func startBenchGateway(b *testing.B, mode string) pb.ClientRequestServiceClient {
	o := rpc.Options{MaxFetchResponseBytes: benchMaxMsg - 1<<20}
	sopts := []grpc.ServerOption{grpc.MaxRecvMsgSize(benchMaxMsg), grpc.MaxSendMsgSize(benchMaxMsg)}
	copts := []grpc.DialOption{grpc.WithTransportCredentials(insecure.NewCredentials()),
		grpc.WithDefaultCallOptions(grpc.MaxCallRecvMsgSize(benchMaxMsg), grpc.MaxCallSendMsgSize(benchMaxMsg))}
	if mode != "off" {
		var to telemetry.Options
		if mode == "on" {
			tp := sdktrace.NewTracerProvider(sdktrace.WithBatcher(discardExporter{}))
			mp := sdkmetric.NewMeterProvider(sdkmetric.WithReader(sdkmetric.NewManualReader()))
			b.Cleanup(func() { _ = tp.Shutdown(context.Background()) })
			b.Cleanup(func() { _ = mp.Shutdown(context.Background()) })
			to.TracerProvider, to.MeterProvider = tp, mp
		}
		to.Logger = slog.New(telemetry.LogHandler(slog.NewJSONHandler(io.Discard, &slog.HandlerOptions{Level: slog.LevelWarn})))
		tel, err := telemetry.New(to)
		if err != nil {
			b.Fatal(err)
		}
		o.NewObserver = func(ctx context.Context, ri *rpc.RequestInfo) httpengine.Observer {
			return tel.NewObserver(ctx, telemetry.Request{Options: ri.Options, Agent: ri.Agent, Propagate: ri.Propagate})
		}
		o.AgentCreated = tel.WatchAgent
		sopts = append(sopts, grpc.StatsHandler(tel.ServerHandler()))
	}
	svc := rpc.New(o)
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		b.Fatal(err)
	}
	srv := grpc.NewServer(sopts...)
	svc.Register(srv)
	go srv.Serve(lis) // ends at srv.Stop
	cc, err := grpc.NewClient(lis.Addr().String(), copts...)
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() {
		cc.Close()
		srv.Stop()
		svc.Close()
	})
	return pb.NewClientRequestServiceClient(cc)
}

// tracedCtx is a caller's context with a sampled traceparent: the caller
// is traced in every mode; its own instrumentation is not the gateway's
// cost, so the client has none.
func tracedCtx() context.Context {
	return metadata.AppendToOutgoingContext(context.Background(), "traceparent", "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01")
}

// BenchmarkFetchTracing measures a small Fetch (GET, 5-byte body, keep-alive)
// through the real gRPC server from a traced caller, in the three modes of
// startBenchGateway. cpu-ns/op is the whole process's CPU (gateway, client
// and upstream) per request, from getrusage; compare the modes in the same
// run.
func BenchmarkFetchTracing(b *testing.B) {
	up := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) { io.WriteString(w, "hello") }))
	defer up.Close()
	for _, mode := range []string{"off", "noexport", "on"} {
		b.Run(mode, func(b *testing.B) {
			c := startBenchGateway(b, mode)
			ctx := tracedCtx()
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
			c := startBenchGateway(b, "noexport")
			ctx := tracedCtx()
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
