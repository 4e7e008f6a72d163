package server

import (
	"context"
	"log/slog"
	"runtime/debug"
	"strings"
	"time"

	"github.com/grpc-ecosystem/go-grpc-middleware/v2/interceptors/logging"
	"github.com/grpc-ecosystem/go-grpc-middleware/v2/interceptors/recovery"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/health/grpc_health_v1"
	"google.golang.org/grpc/peer"
	"google.golang.org/grpc/status"
)

// callLog writes the access log: one "finished call" line per call (the
// fields and code-to-level mapping of go-grpc-middleware's logging
// interceptor, whose names operators' queries already use), health checks
// left out. It is written here rather than taken from that interceptor
// because the interceptor builds every field of the line (peer, start time,
// method split, a context copy) before it knows whether the level is
// enabled: at the default warn level that was ~7% of the CPU of a small
// Fetch for lines that were never written. Here the level is decided from
// the outcome first and the line is built only when it will be written.
type callLog struct {
	l *slog.Logger
}

// healthPrefix marks the health service's methods: probes run every few
// seconds and would drown the log.
var healthPrefix = "/" + grpc_health_v1.Health_ServiceDesc.ServiceName + "/"

func (c callLog) unary(ctx context.Context, req any, info *grpc.UnaryServerInfo, handler grpc.UnaryHandler) (any, error) {
	if strings.HasPrefix(info.FullMethod, healthPrefix) {
		return handler(ctx, req)
	}
	start := time.Now()
	resp, err := handler(ctx, req)
	c.finished(ctx, info.FullMethod, "unary", start, err)
	return resp, err
}

func (c callLog) stream(srv any, ss grpc.ServerStream, info *grpc.StreamServerInfo, handler grpc.StreamHandler) error {
	if strings.HasPrefix(info.FullMethod, healthPrefix) {
		return handler(srv, ss)
	}
	start := time.Now()
	err := handler(srv, ss)
	c.finished(ss.Context(), info.FullMethod, methodType(info), start, err)
	return err
}

func methodType(info *grpc.StreamServerInfo) string {
	switch {
	case info.IsClientStream && info.IsServerStream:
		return "bidi_stream"
	case info.IsClientStream:
		return "client_stream"
	default:
		return "server_stream"
	}
}

// finished logs the call's line if its level is enabled.
func (c callLog) finished(ctx context.Context, fullMethod, kind string, start time.Time, err error) {
	code := status.Code(err)
	lvl := slog.Level(logging.DefaultServerCodeToLevel(code))
	if !c.l.Enabled(ctx, lvl) {
		return
	}
	service, method, _ := strings.Cut(strings.TrimPrefix(fullMethod, "/"), "/")
	attrs := make([]slog.Attr, 0, 10)
	attrs = append(attrs,
		slog.String("protocol", "grpc"),
		slog.String("grpc.component", "server"),
		slog.String("grpc.service", service),
		slog.String("grpc.method", method),
		slog.String("grpc.method_type", kind))
	if p, ok := peer.FromContext(ctx); ok && p.Addr != nil {
		attrs = append(attrs, slog.String("peer.address", p.Addr.String()))
	}
	attrs = append(attrs,
		slog.String("grpc.start_time", start.Format(time.RFC3339)),
		slog.String("grpc.code", code.String()),
		slog.Float64("grpc.time_ms", float64(time.Since(start).Microseconds())/1000))
	if err != nil {
		attrs = append(attrs, slog.String("grpc.error", err.Error()))
	}
	c.l.LogAttrs(ctx, lvl, "finished call", attrs...)
}

// chain builds the interceptor chains: the access log, recovery, then the
// caller's slot (auth, limits), then the handler. Recovery runs inside the
// access log so that a recovered panic is logged as the Internal it became.
func chain(o *options) []grpc.ServerOption {
	cl := callLog{l: o.logger}
	recoverOpts := []recovery.Option{recovery.WithRecoveryHandlerContext(panicHandler(o.logger))}
	var unary []grpc.UnaryServerInterceptor
	var stream []grpc.StreamServerInterceptor
	if o.outerUnary != nil {
		unary = append(unary, o.outerUnary)
	}
	if o.outerStream != nil {
		stream = append(stream, o.outerStream)
	}
	unary = append(unary, cl.unary, recovery.UnaryServerInterceptor(recoverOpts...))
	stream = append(stream, cl.stream, recovery.StreamServerInterceptor(recoverOpts...))
	// The slot for authentication and limits (see WithUnaryInterceptors).
	unary = append(unary, o.unary...)
	stream = append(stream, o.stream...)
	return []grpc.ServerOption{grpc.ChainUnaryInterceptor(unary...), grpc.ChainStreamInterceptor(stream...)}
}

// panicHandler logs a recovered panic with its stack and answers INTERNAL.
// The panic value stays in the log: it may hold request data the caller
// should not see.
func panicHandler(l *slog.Logger) recovery.RecoveryHandlerFuncContext {
	return func(ctx context.Context, p any) error {
		method, _ := grpc.Method(ctx)
		l.ErrorContext(ctx, "panic in gRPC handler", "grpc.method", method, "panic", p, "stack", string(debug.Stack()))
		return status.Error(codes.Internal, "internal error")
	}
}
