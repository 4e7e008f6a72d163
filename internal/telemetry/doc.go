// Package telemetry owns the gateway's OpenTelemetry traces and metrics and
// its request-scoped logs: provider setup from the standard OTEL_*
// variables (setup.go), the Prometheus handler for the admin listener, the
// gRPC server interceptors (rpcserver.go: the caller's trace context, the
// RPC's SERVER span and rpc.server.call.duration), one CLIENT span per
// outbound HTTP attempt built from the engine's events (observer.go,
// observer_attempt.go, the summary log line in observer_log.go, the
// target and url.full in target.go), the HTTP client and pool metrics
// (instruments.go, pool.go), URL redaction (redact.go), and the slog
// handler that stamps trace and span ids on every record (slog.go).
//
// Semantic conventions: the stable OpenTelemetry HTTP client conventions
// (span name = method; http.request.method, url.full, server.address,
// server.port, http.response.status_code, error.type,
// network.peer.address/port, network.protocol.version,
// http.request.resend_count, http.request.body.size,
// http.response.body.size; metrics http.client.request.duration,
// http.client.active_requests, http.client.open_connections,
// http.client.connection.duration). Gateway-specific attributes and
// metrics are prefixed httpgateway.
//
// Attempts: the observer is an httpengine.AttemptObserver. Each attempt
// (the first, each followed redirect hop, the retry on a fresh socket
// after a reused one failed, the resend after a login) is a span of its
// own, and when propagating, the attempt's head carries that span's
// traceparent (OnAttempt sets it before the head is rendered). A new
// socket's dial phases become the span events socket.lookup,
// socket.connect and socket.secureConnect at the moments they ended
// (OnConnected, from agentpool.SocketInfo.Dial).
//
// Cost: with nothing exported the server interceptors only extract the
// caller's trace context and the observer starts no span; with a span
// that does not record nothing is built for it; the target and URL are
// built only when something records them; metric attribute sets and the
// socket event's attributes are cached; the summary line is built only
// when its level is enabled. BenchmarkFetchTracing and
// BenchmarkFetchTracingInterleaved measure it.
//
// Goroutines: one per agent watched for connection durations (WatchAgent),
// ending when the agent is destroyed (its event subscription closes); and
// the SDK's batch span processor and periodic metric reader, which end in
// Shutdown. An Observer starts none: it runs on the engine's goroutines,
// under the request's lock.
//
// It may import internal/httpengine, internal/agentpool and
// internal/nodeerr; it must never import internal/rpc (cmd/gateway adapts
// rpc's hooks to it), and nothing below rpc may import it.
package telemetry
