package main

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"strings"
	"sync/atomic"
	"time"

	coltracepb "go.opentelemetry.io/proto/otlp/collector/trace/v1"
	tracepb "go.opentelemetry.io/proto/otlp/trace/v1"
	"google.golang.org/grpc"
	"google.golang.org/protobuf/proto"
)

// The OTLP sink is where gateway_fetch_traced's gateway exports its spans:
// an OTLP trace receiver over HTTP (the exporters' default protocol, which
// the arm uses) and gRPC (this binary's "otlpsink" subcommand, a
// separate process like the Go upstream, so its CPU is its own) that
// decodes each export, counts the spans and discards them. A plain HTTP
// listener beside it answers GET /stats with the counts, which the harness
// reads around every round of the traced arm: a gateway that exported
// nothing fails its arm instead of passing as tracing that costs nothing.

// sinkMaxRecvMsg bounds one export. The SDK's batches are 512 spans
// (OTEL_BSP_MAX_EXPORT_BATCH_SIZE), a few hundred KiB; gRPC's default of
// 4 MiB would do, this leaves room for larger batches.
const sinkMaxRecvMsg = 64 << 20

// sinkStats are the counts a sink reports, since it started.
type sinkStats struct {
	Exports int64 `json:"exports"` // Export calls answered
	Spans   int64 `json:"spans"`   // spans of every kind
	Server  int64 `json:"server"`  // SPAN_KIND_SERVER (the gateway's one per RPC)
	Client  int64 `json:"client"`  // SPAN_KIND_CLIENT (one per HTTP attempt)
}

// spanSink is the OTLP TraceServiceServer: it counts and discards. Its
// counters are atomics, so concurrent exports and stats reads need no lock.
type spanSink struct {
	coltracepb.UnimplementedTraceServiceServer

	exports, spans, server, client atomic.Int64
}

// Export counts the request's spans and accepts all of them (OTLP/gRPC).
func (s *spanSink) Export(_ context.Context, req *coltracepb.ExportTraceServiceRequest) (*coltracepb.ExportTraceServiceResponse, error) {
	s.count(req)
	return &coltracepb.ExportTraceServiceResponse{}, nil
}

// count adds the spans of one export to the counts.
func (s *spanSink) count(req *coltracepb.ExportTraceServiceRequest) {
	var n, server, client int64
	for _, rs := range req.GetResourceSpans() {
		for _, ss := range rs.GetScopeSpans() {
			for _, sp := range ss.GetSpans() {
				n++
				switch sp.GetKind() {
				case tracepb.Span_SPAN_KIND_SERVER:
					server++
				case tracepb.Span_SPAN_KIND_CLIENT:
					client++
				}
			}
		}
	}
	s.spans.Add(n)
	s.server.Add(server)
	s.client.Add(client)
	s.exports.Add(1)
}

func (s *spanSink) stats() sinkStats {
	return sinkStats{Exports: s.exports.Load(), Spans: s.spans.Load(), Server: s.server.Load(), Client: s.client.Load()}
}

// ServeHTTP answers GET /stats with the counts as JSON, and receives
// OTLP/HTTP exports (binary protobuf) at POST /v1/traces.
func (s *spanSink) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if r.Method == http.MethodPost && r.URL.Path == otlpHTTPPath {
		s.exportHTTP(w, r)
		return
	}
	if r.Method != http.MethodGet || r.URL.Path != "/stats" {
		http.NotFound(w, r)
		return
	}
	w.Header().Set("Content-Type", "application/json")
	_ = json.NewEncoder(w).Encode(s.stats())
}

// otlpHTTPPath is the OTLP/HTTP trace path.
const otlpHTTPPath = "/v1/traces"

// exportHTTP is Export over OTLP/HTTP: a binary protobuf
// ExportTraceServiceRequest in, an empty response out.
func (s *spanSink) exportHTTP(w http.ResponseWriter, r *http.Request) {
	body, err := io.ReadAll(io.LimitReader(r.Body, sinkMaxRecvMsg+1))
	if err != nil || len(body) > sinkMaxRecvMsg {
		http.Error(w, "bad body", http.StatusBadRequest)
		return
	}
	var req coltracepb.ExportTraceServiceRequest
	if err := proto.Unmarshal(body, &req); err != nil {
		http.Error(w, err.Error(), http.StatusBadRequest)
		return
	}
	s.count(&req)
	out, _ := proto.Marshal(&coltracepb.ExportTraceServiceResponse{})
	w.Header().Set("Content-Type", "application/x-protobuf")
	_, _ = w.Write(out)
}

// newSinkServer is the sink's gRPC server with the trace service on it.
func newSinkServer(s *spanSink) *grpc.Server {
	srv := grpc.NewServer(grpc.MaxRecvMsgSize(sinkMaxRecvMsg))
	coltracepb.RegisterTraceServiceServer(srv, s)
	return srv
}

// runOTLPSink is the "otlpsink" subcommand. It prints "listening
// GRPC_ADDR STATS_ADDR" on stdout once both listeners accept connections
// and serves until killed.
func runOTLPSink(args []string) int {
	fs := flag.NewFlagSet("otlpsink", flag.ContinueOnError)
	listen := fs.String("listen", "127.0.0.1:0", "OTLP/gRPC listen address")
	statsListen := fs.String("stats-listen", "127.0.0.1:0", "listen address of GET /stats (JSON counts)")
	if err := fs.Parse(args); err != nil {
		return 2
	}
	gl, err := net.Listen("tcp", *listen)
	if err != nil {
		fmt.Fprintln(os.Stderr, "otlpsink:", err)
		return 1
	}
	hl, err := net.Listen("tcp", *statsListen)
	if err != nil {
		fmt.Fprintln(os.Stderr, "otlpsink:", err)
		return 1
	}
	s := &spanSink{}
	srv := newSinkServer(s)
	hsrv := &http.Server{Handler: s, ReadHeaderTimeout: 10 * time.Second}
	errc := make(chan error, 2)
	go func() { errc <- srv.Serve(gl) }()  // ends when the process is killed
	go func() { errc <- hsrv.Serve(hl) }() // likewise
	fmt.Printf("listening %s %s\n", gl.Addr(), hl.Addr())
	err = <-errc
	fmt.Fprintln(os.Stderr, "otlpsink:", err)
	return 1
}

// otlpSink is the running sink process, as the harness sees it.
type otlpSink struct {
	proc      *child
	grpcAddr  string
	statsAddr string
}

// startOTLPSink starts the sink process and waits for its addresses. The
// harness stops it at exit with every other child.
func startOTLPSink(ctx context.Context, logf io.Writer) (*otlpSink, error) {
	self, err := os.Executable()
	if err != nil {
		return nil, err
	}
	cmd := exec.CommandContext(ctx, self, "otlpsink", "-listen", "127.0.0.1:0", "-stats-listen", "127.0.0.1:0")
	out, err := cmd.StdoutPipe()
	if err != nil {
		return nil, err
	}
	ch, err := kids.start("otlpsink", cmd, logf)
	if err != nil {
		return nil, err
	}
	addrs, err := waitLine(out, logf, 15*time.Second, func(l string) (string, bool) {
		return strings.CutPrefix(l, "listening ")
	})
	if err != nil {
		ch.stop(time.Second)
		return nil, fmt.Errorf("otlp sink: %w (%s)", err, ch.tail)
	}
	grpcAddr, statsAddr, ok := strings.Cut(addrs, " ")
	if !ok {
		ch.stop(time.Second)
		return nil, fmt.Errorf("otlp sink: unexpected line %q", "listening "+addrs)
	}
	return &otlpSink{proc: ch, grpcAddr: grpcAddr, statsAddr: statsAddr}, nil
}

// endpoint is the sink's endpoint for protocol (see tracedEnv).
func (s *otlpSink) endpoint(protocol string) string {
	if protocol == "grpc" {
		return s.grpcEndpoint()
	}
	return s.httpEndpoint()
}

// grpcEndpoint is the OTLP/gRPC endpoint for
// OTEL_EXPORTER_OTLP_TRACES_ENDPOINT; the http scheme makes the exporter
// connect without TLS.
func (s *otlpSink) grpcEndpoint() string { return "http://" + s.grpcAddr }

// httpEndpoint is the OTLP/HTTP endpoint (a per-signal endpoint is the
// full URL, path included).
func (s *otlpSink) httpEndpoint() string { return "http://" + s.statsAddr + otlpHTTPPath }

// stats asks the sink for its counts.
func (s *otlpSink) stats(ctx context.Context) (sinkStats, error) {
	return fetchSinkStats(ctx, s.statsAddr)
}

// fetchSinkStats reads GET /stats of the sink at addr.
func fetchSinkStats(ctx context.Context, addr string) (sinkStats, error) {
	ctx, cancel := context.WithTimeout(ctx, 2*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, "http://"+addr+"/stats", nil)
	if err != nil {
		return sinkStats{}, err
	}
	resp, err := adminClient.Do(req)
	if err != nil {
		return sinkStats{}, fmt.Errorf("otlp sink stats: %w", err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return sinkStats{}, fmt.Errorf("otlp sink stats: %s", resp.Status)
	}
	var st sinkStats
	if err := json.NewDecoder(resp.Body).Decode(&st); err != nil {
		return sinkStats{}, fmt.Errorf("otlp sink stats: %w", err)
	}
	return st, nil
}
