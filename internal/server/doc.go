// Package server builds and runs the gateway's gRPC server from a validated
// config.Config: the interceptor chains (logging.go: the call interceptors
// of WithCallInterceptors (telemetry), then the access log, which decides a line's level from
// the call's code before building it, then panic recovery, then
// authentication (internal/auth, from the config's tokens and mTLS
// settings) first in the slot for further interceptors), server TLS with
// certificate and client-CA files re-read on change (tls.go), the transport
// settings (server.go: stream workers, write buffer, static flow-control
// windows, each with the measurement that chose it), keepalive enforcement
// and message-size limits, grpc.health.v1, server reflection, the opt-in
// admin HTTP listener, and the drain sequence (health NOT_SERVING first,
// then a graceful stop bounded by ShutdownGrace, then a hard stop).
//
// It does not know the gateway's own services: the caller registers them
// through the callback given to New. So it must never import internal/rpc,
// nor anything below it (internal/httpengine, internal/agentpool).
package server
