package server

import (
	"context"
	"log/slog"
	"runtime/debug"
	"strings"

	"github.com/grpc-ecosystem/go-grpc-middleware/v2/interceptors"
	"github.com/grpc-ecosystem/go-grpc-middleware/v2/interceptors/logging"
	"github.com/grpc-ecosystem/go-grpc-middleware/v2/interceptors/recovery"
	"github.com/grpc-ecosystem/go-grpc-middleware/v2/interceptors/selector"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/health/grpc_health_v1"
	"google.golang.org/grpc/status"
)

// InterceptorLogger adapts a slog.Logger to go-grpc-middleware's logging
// interface. Its levels are slog's own numbers, so the conversion is a cast.
func InterceptorLogger(l *slog.Logger) logging.Logger {
	return logging.LoggerFunc(func(ctx context.Context, lvl logging.Level, msg string, fields ...any) {
		l.Log(ctx, slog.Level(lvl), msg, fields...)
	})
}

// notHealth matches every call but the health service's: probes run every
// few seconds and would drown the log.
var notHealth = selector.MatchFunc(func(_ context.Context, c interceptors.CallMeta) bool {
	return !strings.HasPrefix(c.FullMethod(), "/"+grpc_health_v1.Health_ServiceDesc.ServiceName+"/")
})

// chain builds the interceptor chains: logging, recovery, then the
// caller's slot (auth, limits), then the handler.
func chain(o *options) []grpc.ServerOption {
	logOpts := []logging.Option{logging.WithLogOnEvents(logging.FinishCall)}
	recoverOpts := []recovery.Option{recovery.WithRecoveryHandlerContext(panicHandler(o.logger))}
	unary := []grpc.UnaryServerInterceptor{
		selector.UnaryServerInterceptor(logging.UnaryServerInterceptor(InterceptorLogger(o.logger), logOpts...), notHealth),
		recovery.UnaryServerInterceptor(recoverOpts...),
	}
	stream := []grpc.StreamServerInterceptor{
		selector.StreamServerInterceptor(logging.StreamServerInterceptor(InterceptorLogger(o.logger), logOpts...), notHealth),
		recovery.StreamServerInterceptor(recoverOpts...),
	}
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
