package server

import (
	"context"
	"log/slog"
	"net/http"
	"time"

	"google.golang.org/grpc"
)

// Option configures a Server beyond what config.Config says.
type Option func(*options)

type options struct {
	logger     *slog.Logger
	unary      []grpc.UnaryServerInterceptor
	stream     []grpc.StreamServerInterceptor
	serverOpts []grpc.ServerOption
	// callContext, if set, derives every call's context first (see
	// WithCallContext).
	callContext func(ctx context.Context, fullMethod string) context.Context
	// admin are extra admin-listener routes (pattern -> handler).
	admin []adminRoute
	// drainHook runs after health turned NOT_SERVING and before the listener
	// closes; tests use it to look at the server in that window.
	drainHook func()
	// tlsCheckInterval bounds how often the TLS files are stat'ed for
	// changes; tests shorten it.
	tlsCheckInterval time.Duration
}

// WithLogger sets the logger for the server's own events and for the
// per-call log lines. Default slog.Default().
func WithLogger(l *slog.Logger) Option {
	return func(o *options) { o.logger = l }
}

// WithUnaryInterceptors and WithStreamInterceptors fill the slot where
// authentication and limits go. They run, in the order given, after the
// logging interceptor (so a refused call is logged with its code) and after
// panic recovery (so a panic in them does not kill the process), and before
// the service handler.
func WithUnaryInterceptors(i ...grpc.UnaryServerInterceptor) Option {
	return func(o *options) { o.unary = append(o.unary, i...) }
}

// WithStreamInterceptors is WithUnaryInterceptors for streaming calls.
func WithStreamInterceptors(i ...grpc.StreamServerInterceptor) Option {
	return func(o *options) { o.stream = append(o.stream, i...) }
}

// WithServerOptions adds raw grpc.ServerOptions, applied after the ones the
// config implies (e.g. a stats handler for OpenTelemetry).
func WithServerOptions(opts ...grpc.ServerOption) Option {
	return func(o *options) { o.serverOpts = append(o.serverOpts, opts...) }
}

// WithCallContext sets a function that derives each call's context before
// anything else sees it (the access log, recovery, the slot, the handler):
// how the caller's trace context is continued when no stats handler does
// it. A stats handler makes gRPC build per-call stats objects for every
// call, which costs more than the extraction itself.
func WithCallContext(f func(ctx context.Context, fullMethod string) context.Context) Option {
	return func(o *options) { o.callContext = f }
}

type adminRoute struct {
	pattern string
	h       http.Handler
}

// WithAdminHandler adds a route to the admin listener (e.g. "GET /metrics"
// for Prometheus). It is served only when admin-listen is set.
func WithAdminHandler(pattern string, h http.Handler) Option {
	return func(o *options) { o.admin = append(o.admin, adminRoute{pattern, h}) }
}
