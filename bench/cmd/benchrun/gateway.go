package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/metadata"
	"google.golang.org/protobuf/proto"

	pb "github.com/httpgateway/httpgateway/gen/httpgateway/v1"
)

// The gateway runs as its own process, built from ./cmd/gateway, so its
// CPU and memory are its own. Its settings for the benchmark:
//   - --egress-allow 127.0.0.1/32: the upstream is on loopback, which the
//     egress policy denies by default;
//   - --max-concurrent-streams 10000, --max-live-requests 20000,
//     --max-requests-per-caller and --max-handles-per-caller 20000: slow_5k
//     has 5,000 calls in flight, all from the one (anonymous) caller the
//     harness is;
//   - --max-send-msg-size / --max-recv-msg-size 160MiB: Fetch carries the
//     100 MiB bodies inline (the streaming arm does not need it);
//   - --log-level warn (the harness's -gateway-log-level): no per-call
//     access log, as squid runs with access_log none.
var gatewayArgs = []string{
	"serve",
	"--egress-allow", "127.0.0.1/32",
	"--max-concurrent-streams", "10000",
	"--max-send-msg-size", "160MiB",
	"--max-recv-msg-size", "160MiB",
	"--max-live-requests", "20000",
	"--max-requests-per-caller", "20000",
	"--max-handles-per-caller", "20000",
}

// gatewayEnv is a gateway's environment: the harness's own without any
// OTEL_* variable, so that only gateway_fetch_traced's gateway exports
// (whatever the shell running the harness has set), plus extra
// ("NAME=value").
func gatewayEnv(extra ...string) []string {
	var env []string
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, "OTEL_") {
			env = append(env, kv)
		}
	}
	return append(env, extra...)
}

// callerTraceparent is the W3C trace context gateway_fetch_traced's calls
// carry in their gRPC metadata, as a traced caller's would: sampled (flags
// 01), so the gateway records its SERVER span and a CLIENT span per HTTP
// attempt under it (the SDK's default sampler is parent-based) and
// continues the trace into the upstream's traceparent. The other gateway
// arms' callers are not traced, as direct's and squid's are not: tracing
// on versus off is the whole of it (the caller's metadata, the gateway's
// spans and export, the upstream's extra header). One fixed value (the
// example of the W3C Trace Context spec): no per-call id generation in
// the client.
const callerTraceparent = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"

// callerTrace is callerTraceparent as outgoing metadata. It is shared by
// every call and never modified (metadata.NewOutgoingContext's rule).
var callerTrace = metadata.Pairs("traceparent", callerTraceparent)

// gatewayConns is how many gRPC connections the client spreads calls over,
// as a client would with a few replicas or subchannels.
const gatewayConns = 8

// maxMsg bounds the client's gRPC messages: a 100 MiB body plus its head.
const maxMsg = 200 << 20

// uploadChunk is the Write/Exchange chunk size of streamed uploads.
const uploadChunk = 256 << 10

type gateway struct {
	proc      *child
	addr      string // gRPC
	adminAddr string // pprof
	conns     []*grpc.ClientConn
	next      atomic.Uint64

	// Named agents made by setupAgents: Node-like keep-alive pools with
	// room for every scenario's sockets, and one without keep-alive.
	agentKeepAlive, agentClose string
	freshN                     atomic.Int64
}

// buildGateway compiles ./cmd/gateway of the module at repo into dir.
func buildGateway(ctx context.Context, repo, dir string) (string, error) {
	ctx, cancel := context.WithTimeout(ctx, 5*time.Minute)
	defer cancel()
	bin := filepath.Join(dir, "gateway")
	cmd := exec.CommandContext(ctx, "go", "build", "-o", bin, "./cmd/gateway")
	cmd.Dir = repo
	if out, err := cmd.CombinedOutput(); err != nil {
		return "", fmt.Errorf("go build ./cmd/gateway: %w: %s", err, lastLines(string(out), 8))
	}
	return bin, nil
}

// startGateway starts the gateway and connects to it. At the default log
// level the gateway logs its bound addresses ("admin listening", then
// "listening", with addr) and the harness reads them; at warn it logs
// nothing, so the harness picks free ports itself and waits for them.
//
// env is the gateway's whole environment (gatewayEnv).
func startGateway(ctx context.Context, bin, logLevel string, env []string, logf io.Writer) (*gateway, error) {
	var lastErr error
	for range 3 { // a free port may be taken before the gateway binds it
		g, err := startGatewayOnce(ctx, bin, logLevel, env, logf)
		if err == nil {
			return g, nil
		}
		lastErr = err
	}
	return nil, lastErr
}

func startGatewayOnce(ctx context.Context, bin, logLevel string, env []string, logf io.Writer) (*gateway, error) {
	listen, admin := "127.0.0.1:0", "127.0.0.1:0"
	if logLevel != "info" && logLevel != "debug" {
		p1, err1 := freePort()
		p2, err2 := freePort()
		if err := errors.Join(err1, err2); err != nil {
			return nil, err
		}
		listen, admin = fmt.Sprintf("127.0.0.1:%d", p1), fmt.Sprintf("127.0.0.1:%d", p2)
	}
	args := append(slices.Clone(gatewayArgs), "--listen", listen, "--admin-listen", admin, "--log-level", logLevel)
	cmd := exec.CommandContext(ctx, bin, args...)
	cmd.Env = env
	errPipe, err := cmd.StderrPipe()
	if err != nil {
		return nil, err
	}
	ch, err := kids.start("gateway", cmd, logf)
	if err != nil {
		return nil, err
	}
	g := &gateway{proc: ch, addr: listen, adminAddr: admin}
	if listen == "127.0.0.1:0" {
		g.addr, err = waitLine(errPipe, io.MultiWriter(logf, ch.tail), 30*time.Second, func(l string) (string, bool) {
			var rec struct{ Msg, Addr string }
			if json.Unmarshal([]byte(l), &rec) != nil {
				return "", false
			}
			switch rec.Msg {
			case "admin listening":
				g.adminAddr = rec.Addr
			case "listening":
				return rec.Addr, true
			}
			return "", false
		})
	} else {
		go func() { _, _ = io.Copy(io.MultiWriter(logf, ch.tail), errPipe) }() // ends when the gateway exits
		err = waitTCP(ctx, g.addr, 30*time.Second)
		if err == nil && ch.exited() {
			err = errors.New("exited")
		}
	}
	if err != nil {
		ch.stop(time.Second)
		return nil, fmt.Errorf("gateway: %w: %s", err, ch.tail)
	}
	for range gatewayConns {
		cc, err := grpc.NewClient(g.addr,
			grpc.WithTransportCredentials(insecure.NewCredentials()),
			grpc.WithDefaultCallOptions(grpc.MaxCallRecvMsgSize(maxMsg), grpc.MaxCallSendMsgSize(maxMsg)))
		if err != nil {
			g.close()
			return nil, err
		}
		g.conns = append(g.conns, cc)
	}
	return g, nil
}

func (g *gateway) close() {
	for _, cc := range g.conns {
		cc.Close()
	}
}

// cc picks the next connection, round robin.
func (g *gateway) cc() grpc.ClientConnInterface {
	return g.conns[g.next.Add(1)%uint64(len(g.conns))]
}

func (g *gateway) requests() pb.ClientRequestServiceClient {
	return pb.NewClientRequestServiceClient(g.cc())
}

func (g *gateway) agents() pb.AgentServiceClient { return pb.NewAgentServiceClient(g.cc()) }

// probe checks that Fetch answers (the rpc layer may not have landed) and
// sets up the agents. A non-nil error means the gateway arms cannot run.
func (g *gateway) probe(ctx context.Context, url string) error {
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	resp, err := g.requests().Fetch(ctx, &pb.FetchRequest{Url: url, Method: "GET", Options: &pb.RequestOptions{}})
	if err != nil {
		return fmt.Errorf("probe fetch: %w", err)
	}
	if resp.GetStatusCode() != 200 {
		return fmt.Errorf("probe fetch: status %d", resp.GetStatusCode())
	}
	// Bring up every connection now, so that no round pays for (or counts
	// the goroutines of) connecting.
	for _, cc := range g.conns {
		if _, err := pb.NewAgentServiceClient(cc).ListAgents(ctx, &pb.ListAgentsRequest{}); err != nil {
			return fmt.Errorf("probe connection: %w", err)
		}
	}
	if g.agentKeepAlive, err = g.createAgent(ctx, "bench-keepalive", true); err != nil {
		return err
	}
	g.agentClose, err = g.createAgent(ctx, "bench-close", false)
	return err
}

// createAgent makes a named agent like `new http.Agent({keepAlive,
// maxFreeSockets: 8192})`: Node's defaults keep only 256 free sockets,
// fewer than idle_1k needs.
func (g *gateway) createAgent(ctx context.Context, name string, keepAlive bool) (string, error) {
	_, err := g.agents().CreateAgent(ctx, &pb.CreateAgentRequest{Name: name, Options: &pb.AgentOptions{
		KeepAlive:      proto.Bool(keepAlive),
		MaxFreeSockets: proto.Uint32(8192),
		Scheduling:     pb.Scheduling_SCHEDULING_LIFO,
	}})
	if err != nil {
		return "", fmt.Errorf("CreateAgent %s: %w", name, err)
	}
	return name, nil
}

func (g *gateway) goroutines(ctx context.Context) (int, error) {
	if g.adminAddr == "" {
		return 0, errors.New("no admin listener")
	}
	return fetchGoroutines(ctx, g.adminAddr)
}

// gatewayArm is gateway_fetch (Fetch) or gateway_stream (Exchange; the
// handle RPCs Request, Write, End and Events for large bodies).
type gatewayArm struct {
	name   string // gateway_fetch, gateway_stream or gateway_fetch_traced
	g      *gateway
	stream bool
	traced bool // every call carries callerTrace
	procs  []proc

	fresh string // the FreshPool job's agent, until Release

	bodyOnce sync.Once
	body     []byte // see bodyOf
}

func (a *gatewayArm) Name() string { return a.name }

func (a *gatewayArm) Procs() []proc                                  { return a.procs }
func (a *gatewayArm) Goroutines() func(context.Context) (int, error) { return a.g.goroutines }

// AdminAddr is the gateway's admin listener (pprof), for -profile.
func (a *gatewayArm) AdminAddr() string { return a.g.adminAddr }

func (a *gatewayArm) Close() {
	a.g.close()
	a.g.proc.stop(5 * time.Second)
}

func (a *gatewayArm) Release(ctx context.Context) {
	if a.fresh == "" {
		return
	}
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	_, _ = a.g.agents().DestroyAgent(ctx, &pb.DestroyAgentRequest{Name: a.fresh})
	a.fresh = ""
}

func (a *gatewayArm) Run(ctx context.Context, j job) (roundResult, error) {
	agent := a.g.agentKeepAlive
	switch {
	case j.FreshPool:
		a.Release(ctx)
		name, err := a.g.createAgent(ctx, "bench-fresh-"+strconv.FormatInt(a.g.freshN.Add(1), 10), j.KeepAlive)
		if err != nil {
			return roundResult{}, err
		}
		a.fresh, agent = name, name
	case !j.KeepAlive:
		agent = a.g.agentClose
	}
	var do doFunc
	switch {
	case !a.stream:
		do = func(ctx context.Context) (int64, error) { return a.fetch(ctx, j, agent) }
	case j.Large:
		do = func(ctx context.Context) (int64, error) { return a.handle(ctx, j, agent) }
	default:
		do = func(ctx context.Context) (int64, error) { return a.exchange(ctx, j, agent) }
	}
	if a.traced {
		untraced := do
		do = func(ctx context.Context) (int64, error) {
			return untraced(metadata.NewOutgoingContext(ctx, callerTrace))
		}
	}
	return runLoad(ctx, j, do), nil
}

// bodyOf returns the Fetch arm's request body of n bytes, made on first use
// and kept for the arm's life (one scenario), not the harness's, so it
// never shows in later scenarios' client memory.
func (a *gatewayArm) bodyOf(n int64) []byte {
	if n <= 0 {
		return nil
	}
	a.bodyOnce.Do(func() {
		a.body = make([]byte, n)
		for off := 0; off < len(a.body); off += len(patternBlock) {
			copy(a.body[off:], patternBlock)
		}
	})
	if int64(len(a.body)) < n {
		return make([]byte, n) // one job, one size: does not happen
	}
	return a.body[:n]
}

func (a *gatewayArm) fetch(ctx context.Context, j job, agent string) (int64, error) {
	resp, err := a.g.requests().Fetch(ctx, &pb.FetchRequest{
		Url: j.URL, Method: j.Method, Agent: agent, Body: a.bodyOf(j.BodyBytes), MaxResponseBytes: maxMsg - 1<<20,
		Options: &pb.RequestOptions{},
	})
	if err != nil {
		return 0, err
	}
	if resp.GetStatusCode() != 200 {
		return 0, fmt.Errorf("status %d", resp.GetStatusCode())
	}
	if j.BodyBytes > 0 {
		return j.BodyBytes, nil
	}
	return int64(len(resp.GetBody())), nil
}

func contentLength(n int64) []*pb.Header {
	if n <= 0 {
		return nil
	}
	return []*pb.Header{{Name: "Content-Length", Value: strconv.FormatInt(n, 10)}}
}

// exchange is one request on one Exchange stream: start, the body, end,
// then events until the stream ends.
func (a *gatewayArm) exchange(ctx context.Context, j job, agent string) (int64, error) {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	st, err := a.g.requests().Exchange(ctx)
	if err != nil {
		return 0, err
	}
	send := func(r *pb.ExchangeRequest) error {
		if err := st.Send(r); err != nil && !errors.Is(err, io.EOF) {
			return err
		}
		return nil // io.EOF: the server ended the stream; Recv says why
	}
	start := &pb.RequestOptions{Url: j.URL, Method: j.Method, Agent: agent, Headers: contentLength(j.BodyBytes)}
	if err := send(&pb.ExchangeRequest{Op: &pb.ExchangeRequest_Start{Start: start}}); err != nil {
		return 0, err
	}
	body := &patternReader{left: j.BodyBytes}
	buf := make([]byte, min(uploadChunk, j.BodyBytes))
	for body.left > 0 {
		n, _ := body.Read(buf)
		if err := send(&pb.ExchangeRequest{Op: &pb.ExchangeRequest_Write{Write: buf[:n]}}); err != nil {
			return 0, err
		}
	}
	if err := send(&pb.ExchangeRequest{Op: &pb.ExchangeRequest_End{End: &pb.EndOp{}}}); err != nil {
		return 0, err
	}
	if err := st.CloseSend(); err != nil {
		return 0, err
	}
	var ev eventTally
	for {
		m, err := st.Recv()
		if errors.Is(err, io.EOF) {
			return ev.result(j)
		}
		if err != nil {
			return 0, err
		}
		if r := m.GetOpRefused(); r != nil {
			return 0, fmt.Errorf("op %d refused: %s %s", r.GetOpIndex(), r.GetError().GetCode(), r.GetError().GetMessage())
		}
		if e := m.GetEvent(); e != nil {
			ev.add(e)
		}
	}
}

// handle is one request through the handle RPCs: Request, Events, then
// Write (uploads) or End, reading events until the stream ends.
func (a *gatewayArm) handle(ctx context.Context, j job, agent string) (int64, error) {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	c := a.g.requests()
	created, err := c.Request(ctx, &pb.RequestRequest{Options: &pb.RequestOptions{
		Url: j.URL, Method: j.Method, Agent: agent, Headers: contentLength(j.BodyBytes),
	}})
	if err != nil {
		return 0, err
	}
	id := created.GetRequest().GetRequestId()
	events, err := c.Events(ctx, &pb.EventsRequest{RequestId: id})
	if err != nil {
		return 0, err
	}
	if j.BodyBytes > 0 {
		if err := writeBody(ctx, c, id, j.BodyBytes); err != nil {
			return 0, err
		}
	} else if _, err := c.End(ctx, &pb.EndRequest{RequestId: id}); err != nil {
		return 0, err
	}
	var ev eventTally
	for {
		m, err := events.Recv()
		if errors.Is(err, io.EOF) {
			return ev.result(j)
		}
		if err != nil {
			return 0, err
		}
		ev.add(m.GetEvent())
	}
}

// writeBody streams n bytes on one Write stream, the last chunk with end.
func writeBody(ctx context.Context, c pb.ClientRequestServiceClient, id string, n int64) error {
	ws, err := c.Write(ctx)
	if err != nil {
		return err
	}
	body := &patternReader{left: n}
	buf := make([]byte, min(uploadChunk, n))
	for body.left > 0 {
		k, _ := body.Read(buf)
		if err := ws.Send(&pb.WriteRequest{RequestId: id, Chunk: buf[:k], End: body.left == 0}); err != nil {
			if errors.Is(err, io.EOF) {
				break // the server ended the stream: CloseAndRecv says why
			}
			return err
		}
	}
	resp, err := ws.CloseAndRecv()
	if err != nil {
		return fmt.Errorf("write stream: %w", err)
	}
	if !resp.GetEnded() {
		return errors.New("write stream: the request did not end")
	}
	return nil
}

// eventTally follows a request's events: status, body bytes, error.
type eventTally struct {
	status int32
	bytes  int64
	ended  bool
	err    error
}

func (t *eventTally) add(e *pb.Event) {
	switch {
	case e.GetResponse() != nil:
		t.status = e.GetResponse().GetHead().GetStatusCode()
	case e.GetData() != nil:
		t.bytes += int64(len(e.GetData().GetChunk()))
	case e.GetEnd() != nil:
		t.ended = true
	case e.GetError() != nil && t.err == nil:
		ne := e.GetError().GetError()
		t.err = fmt.Errorf("error event: %s %s", ne.GetCode(), ne.GetMessage())
	}
}

func (t *eventTally) result(j job) (int64, error) {
	switch {
	case t.err != nil:
		return 0, t.err
	case t.status != 200:
		return 0, fmt.Errorf("status %d", t.status)
	case !t.ended:
		return 0, errors.New("the response did not end")
	case j.BodyBytes > 0:
		return j.BodyBytes, nil
	}
	return t.bytes, nil
}
