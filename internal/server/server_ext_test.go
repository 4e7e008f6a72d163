package server_test

import (
	"context"
	"encoding/json"
	"log/slog"
	"slices"
	"strings"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
	reflectionpb "google.golang.org/grpc/reflection/grpc_reflection_v1"
	"google.golang.org/grpc/status"

	gatewayv1 "github.com/httpgateway/httpgateway/gen/httpgateway/v1"
	"github.com/httpgateway/httpgateway/internal/config"
	"github.com/httpgateway/httpgateway/internal/server"
)

// registerUnimplemented registers the generated services with no methods
// implemented, as the real rpc layer will register them.
func registerUnimplemented(s grpc.ServiceRegistrar) {
	gatewayv1.RegisterClientRequestServiceServer(s, gatewayv1.UnimplementedClientRequestServiceServer{})
	gatewayv1.RegisterAgentServiceServer(s, gatewayv1.UnimplementedAgentServiceServer{})
}

func testContext(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(t.Context(), 10*time.Second)
	t.Cleanup(cancel)
	return ctx
}

func TestServeEndToEnd(t *testing.T) {
	ts := startServer(t, serverSetup{register: registerUnimplemented})
	cc := dial(t, ts.addr)
	ctx := testContext(t)

	// Health: the server as a whole and each service.
	hc := healthpb.NewHealthClient(cc)
	for _, svc := range []string{"", "httpgateway.v1.ClientRequestService", "httpgateway.v1.AgentService", "grpc.health.v1.Health"} {
		resp, err := hc.Check(ctx, &healthpb.HealthCheckRequest{Service: svc})
		if err != nil || resp.GetStatus() != healthpb.HealthCheckResponse_SERVING {
			t.Errorf("Check(%q) = %v, %v; want SERVING", svc, resp.GetStatus(), err)
		}
	}

	// Reflection (v1) lists what Services says, health and reflection included.
	rc, err := reflectionpb.NewServerReflectionClient(cc).ServerReflectionInfo(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if err := rc.Send(&reflectionpb.ServerReflectionRequest{MessageRequest: &reflectionpb.ServerReflectionRequest_ListServices{ListServices: "*"}}); err != nil {
		t.Fatal(err)
	}
	resp, err := rc.Recv()
	if err != nil {
		t.Fatal(err)
	}
	if err := rc.CloseSend(); err != nil {
		t.Fatal(err)
	}
	var listed []string
	for _, s := range resp.GetListServicesResponse().GetService() {
		listed = append(listed, s.GetName())
	}
	slices.Sort(listed)
	for _, want := range []string{"grpc.health.v1.Health", "grpc.reflection.v1.ServerReflection", "httpgateway.v1.ClientRequestService", "httpgateway.v1.AgentService"} {
		if !slices.Contains(listed, want) {
			t.Errorf("reflection lists %q, missing %q", listed, want)
		}
	}
	if got := ts.Services(); !slices.Equal(got, listed) {
		t.Errorf("Services() = %q, reflection lists %q", got, listed)
	}

	// A not-yet-implemented RPC answers UNIMPLEMENTED, with a message.
	_, err = gatewayv1.NewClientRequestServiceClient(cc).Fetch(ctx, &gatewayv1.FetchRequest{Url: "http://example.com/"})
	if st := status.Convert(err); st.Code() != codes.Unimplemented || st.Message() == "" {
		t.Errorf("Fetch: %v; want UNIMPLEMENTED with a message", err)
	}
	// ... and the call is logged, through slog, as JSON.
	if logs := ts.logs.String(); !strings.Contains(logs, `"grpc.method":"Fetch"`) || !strings.Contains(logs, `"grpc.code":"Unimplemented"`) {
		t.Errorf("Fetch not logged:\n%s", logs)
	}
}

// panickingAgents panics in ListAgents.
type panickingAgents struct {
	gatewayv1.UnimplementedAgentServiceServer
}

func (panickingAgents) ListAgents(context.Context, *gatewayv1.ListAgentsRequest) (*gatewayv1.ListAgentsResponse, error) {
	panic("boom: secret request detail")
}

func TestPanicBecomesInternal(t *testing.T) {
	ts := startServer(t, serverSetup{register: func(s grpc.ServiceRegistrar) {
		gatewayv1.RegisterAgentServiceServer(s, panickingAgents{})
	}})
	cc := dial(t, ts.addr)
	ctx := testContext(t)

	_, err := gatewayv1.NewAgentServiceClient(cc).ListAgents(ctx, &gatewayv1.ListAgentsRequest{})
	st := status.Convert(err)
	if st.Code() != codes.Internal {
		t.Fatalf("ListAgents: %v; want INTERNAL", err)
	}
	if strings.Contains(st.Message(), "secret") {
		t.Errorf("panic value leaked to the caller: %q", st.Message())
	}
	logs := ts.logs.String()
	for _, want := range []string{"panic in gRPC handler", "boom: secret request detail", "goroutine", `"grpc.code":"Internal"`} {
		if !strings.Contains(logs, want) {
			t.Errorf("log lacks %q:\n%s", want, logs)
		}
	}

	// The server survived.
	if resp, err := healthpb.NewHealthClient(cc).Check(ctx, &healthpb.HealthCheckRequest{}); err != nil || resp.GetStatus() != healthpb.HealthCheckResponse_SERVING {
		t.Errorf("after panic: Check = %v, %v", resp.GetStatus(), err)
	}
}

func TestMessageSizeLimit(t *testing.T) {
	ts := startServer(t, serverSetup{
		register: registerUnimplemented,
		config:   func(c *config.Config) { c.MaxRecvMsgSize = 1024 },
	})
	cc := dial(t, ts.addr)
	_, err := gatewayv1.NewClientRequestServiceClient(cc).Fetch(testContext(t), &gatewayv1.FetchRequest{Body: make([]byte, 2048)})
	if code := status.Code(err); code != codes.ResourceExhausted {
		t.Errorf("Fetch with 2 KiB body, limit 1 KiB: %v; want RESOURCE_EXHAUSTED", err)
	}
}

func TestInterceptorSlot(t *testing.T) {
	// What an auth interceptor would do: refuse before the handler runs.
	deny := func(ctx context.Context, req any, info *grpc.UnaryServerInfo, h grpc.UnaryHandler) (any, error) {
		if strings.HasPrefix(info.FullMethod, "/httpgateway.v1.") {
			return nil, status.Error(codes.Unauthenticated, "no token")
		}
		return h(ctx, req)
	}
	ts := startServer(t, serverSetup{register: registerUnimplemented, opts: []server.Option{server.WithUnaryInterceptors(deny)}})
	cc := dial(t, ts.addr)
	_, err := gatewayv1.NewClientRequestServiceClient(cc).Fetch(testContext(t), &gatewayv1.FetchRequest{})
	if code := status.Code(err); code != codes.Unauthenticated {
		t.Errorf("Fetch: %v; want UNAUTHENTICATED from the slot's interceptor", err)
	}
	if !strings.Contains(ts.logs.String(), `"grpc.code":"Unauthenticated"`) {
		t.Errorf("refusal not logged:\n%s", ts.logs.String())
	}
}

func TestNewRejectsBadTLSFiles(t *testing.T) {
	cfg := config.Default()
	cert := t.TempDir() + "/cert.pem"
	if err := writeFile(cert); err != nil {
		t.Fatal(err)
	}
	cfg.TLSCertFile, cfg.TLSKeyFile = cert, cert
	if _, err := server.New(cfg, nil); err == nil || !strings.Contains(err.Error(), "tls") {
		t.Errorf("New with an invalid certificate file: %v; want a TLS error", err)
	}
	cfg = config.Default()
	cfg.Listen = "nope"
	if _, err := server.New(cfg, nil); err == nil || !strings.Contains(err.Error(), "listen") {
		t.Errorf("New with a bad config: %v; want a validation error", err)
	}
}

// levelAgents answers ListAgents OK and GetAgent PERMISSION_DENIED.
type levelAgents struct {
	gatewayv1.UnimplementedAgentServiceServer
}

func (levelAgents) ListAgents(context.Context, *gatewayv1.ListAgentsRequest) (*gatewayv1.ListAgentsResponse, error) {
	return &gatewayv1.ListAgentsResponse{}, nil
}

func (levelAgents) GetAgent(context.Context, *gatewayv1.GetAgentRequest) (*gatewayv1.GetAgentResponse, error) {
	return nil, status.Error(codes.PermissionDenied, "denied: secret-ish detail")
}

// TestCallLogLevels: the access log line's level follows the call's code
// (OK at info, PERMISSION_DENIED at warn, UNIMPLEMENTED at error), so at
// warn only the failures are written, with their fields; health checks are
// never logged.
func TestCallLogLevels(t *testing.T) {
	ts := startServer(t, serverSetup{level: slog.LevelWarn, register: func(s grpc.ServiceRegistrar) {
		gatewayv1.RegisterAgentServiceServer(s, levelAgents{})
	}})
	cc := dial(t, ts.addr)
	ctx := context.Background()
	ac := gatewayv1.NewAgentServiceClient(cc)
	if _, err := ac.ListAgents(ctx, &gatewayv1.ListAgentsRequest{}); err != nil {
		t.Fatal(err)
	}
	if _, err := ac.GetAgent(ctx, &gatewayv1.GetAgentRequest{Name: "x"}); status.Code(err) != codes.PermissionDenied {
		t.Fatalf("GetAgent: %v", err)
	}
	if _, err := ac.DestroyAgent(ctx, &gatewayv1.DestroyAgentRequest{Name: "x"}); status.Code(err) != codes.Unimplemented {
		t.Fatalf("DestroyAgent: %v", err)
	}
	if _, err := healthpb.NewHealthClient(cc).Check(ctx, &healthpb.HealthCheckRequest{}); err != nil {
		t.Fatal(err)
	}
	var lines []map[string]any
	for l := range strings.SplitSeq(strings.TrimSpace(ts.logs.String()), "\n") {
		var rec map[string]any
		if err := json.Unmarshal([]byte(l), &rec); err != nil {
			t.Fatalf("log line %q: %v", l, err)
		}
		if rec["msg"] == "finished call" {
			lines = append(lines, rec)
		}
	}
	want := map[string][2]string{"GetAgent": {"WARN", "PermissionDenied"}, "DestroyAgent": {"ERROR", "Unimplemented"}}
	if len(lines) != len(want) {
		t.Fatalf("%d call lines, want %d (GetAgent, DestroyAgent): %v", len(lines), len(want), lines)
	}
	for _, rec := range lines {
		w, ok := want[rec["grpc.method"].(string)]
		if !ok {
			t.Errorf("unexpected call line %v", rec)
			continue
		}
		if rec["level"] != w[0] || rec["grpc.code"] != w[1] || rec["grpc.service"] != "httpgateway.v1.AgentService" ||
			rec["grpc.method_type"] != "unary" || rec["peer.address"] == nil || rec["grpc.time_ms"] == nil || rec["grpc.error"] == nil {
			t.Errorf("call line %v; want level %s, code %s and every field", rec, w[0], w[1])
		}
	}
}

type callCtxKey struct{}

// ctxAgents reports the call context's callCtxKey value in its errors.
type ctxAgents struct {
	gatewayv1.UnimplementedAgentServiceServer
}

func (ctxAgents) GetAgent(ctx context.Context, _ *gatewayv1.GetAgentRequest) (*gatewayv1.GetAgentResponse, error) {
	v, _ := ctx.Value(callCtxKey{}).(string)
	return nil, status.Error(codes.NotFound, "value="+v)
}

func (ctxAgents) WatchAgent(_ *gatewayv1.WatchAgentRequest, s grpc.ServerStreamingServer[gatewayv1.WatchAgentResponse]) error {
	v, _ := s.Context().Value(callCtxKey{}).(string)
	return status.Error(codes.NotFound, "value="+v)
}

// TestCallInterceptors: the interceptors of WithCallInterceptors derive
// the context every unary and streaming handler sees.
func TestCallInterceptors(t *testing.T) {
	unary := func(ctx context.Context, req any, info *grpc.UnaryServerInfo, next grpc.UnaryHandler) (any, error) {
		return next(context.WithValue(ctx, callCtxKey{}, info.FullMethod), req)
	}
	stream := func(srv any, ss grpc.ServerStream, info *grpc.StreamServerInfo, next grpc.StreamHandler) error {
		return next(srv, ctxStream{ss, context.WithValue(ss.Context(), callCtxKey{}, info.FullMethod)})
	}
	ts := startServer(t, serverSetup{
		register: func(s grpc.ServiceRegistrar) { gatewayv1.RegisterAgentServiceServer(s, ctxAgents{}) },
		opts:     []server.Option{server.WithCallInterceptors(unary, stream)},
	})
	ac := gatewayv1.NewAgentServiceClient(dial(t, ts.addr))
	ctx := context.Background()
	_, err := ac.GetAgent(ctx, &gatewayv1.GetAgentRequest{Name: "x"})
	if got, want := status.Convert(err).Message(), "value=/httpgateway.v1.AgentService/GetAgent"; got != want {
		t.Errorf("unary: %q, want %q", got, want)
	}
	st, err := ac.WatchAgent(ctx, &gatewayv1.WatchAgentRequest{Agent: "x"})
	if err == nil {
		_, err = st.Recv()
	}
	if got, want := status.Convert(err).Message(), "value=/httpgateway.v1.AgentService/WatchAgent"; got != want {
		t.Errorf("stream: %q, want %q", got, want)
	}
}

type ctxStream struct {
	grpc.ServerStream
	ctx context.Context
}

func (s ctxStream) Context() context.Context { return s.ctx }
