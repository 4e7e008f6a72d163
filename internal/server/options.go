package server

import (
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
	// outerUnary and outerStream, if set, run before everything else (see
	// WithCallInterceptors).
	outerUnary  grpc.UnaryServerInterceptor
	outerStream grpc.StreamServerInterceptor
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
// config implies (e.g. the buffer pool cmd/gateway gives gRPC).
func WithServerOptions(opts ...grpc.ServerOption) Option {
	return func(o *options) { o.serverOpts = append(o.serverOpts, opts...) }
}

// WithCallInterceptors sets interceptors that run before everything else
// (the access log, recovery, the slot, the handler): they see each call as
// it arrives and the error it ends with, and the context they pass on is
// the one every line of the call is logged with. Telemetry goes here: the
// caller's trace context and the call's span (an interceptor rather than a
// stats handler, which makes gRPC build per-call stats objects for every
// call). Recovery is inside them: they must not panic.
func WithCallInterceptors(unary grpc.UnaryServerInterceptor, stream grpc.StreamServerInterceptor) Option {
	return func(o *options) { o.outerUnary, o.outerStream = unary, stream }
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
