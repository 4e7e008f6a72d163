// Package telemetry owns the gateway's OpenTelemetry traces and metrics and
// its request-scoped logs: provider setup from the standard OTEL_*
// variables (setup.go), the Prometheus handler for the admin listener, one
// CLIENT span per outbound HTTP attempt built from the engine's events
// (observer.go), the HTTP client and pool metrics (instruments.go,
// pool.go), URL redaction (redact.go), and the slog handler that stamps
// trace and span ids on every record (slog.go).
//
// Semantic conventions: the stable OpenTelemetry HTTP client conventions
// (span name = method; http.request.method, url.full, server.address,
// server.port, http.response.status_code, error.type,
// network.peer.address/port, network.protocol.version,
// http.request.resend_count; metrics http.client.request.duration,
// http.client.active_requests, http.client.open_connections,
// http.client.connection.duration). Gateway-specific attributes and
// metrics are prefixed httpgateway.
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
