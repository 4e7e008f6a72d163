// Package rpc serves the gateway's gRPC API (httpgateway.v1): it maps proto
// messages to the HTTP engine and the agent pool, owns request handles and
// their event streams, and is the one place that turns errors into gRPC
// statuses (toStatus in errors.go).
//
// Files by concept: service.go (Service, Options, Register, Close),
// handles.go (request handles: ids, the live-request cap, the idle reaper),
// agents.go (named agents, `global`, one-time agents), convert.go (proto <->
// engine and pool types), errors.go (toStatus and the gateway's own codes),
// clientrequest.go (Request and the unary handle RPCs), write.go, events.go,
// exchange.go, fetch.go, tunnel.go (the streaming RPCs), agentservice.go,
// observe.go (the hooks tracing and metrics use: Options.NewObserver with
// RequestInfo, Options.AgentCreated, Service.Agents; this package imports
// nothing of OpenTelemetry).
//
// Goroutines this package starts, and their ends: the reaper (ends in
// Service.Close); one op reader per Exchange (ends when its Recv fails,
// which gRPC makes happen once the handler returned); one caller-to-socket
// copier per Tunnel (same); one body writer per Fetch with a body over
// 64 KiB (ends when End returns; the handler waits for it). Every other RPC
// runs on its handler goroutine.
//
// It may import internal/httpengine (and its wire package, whose types the
// engine's events carry), internal/agentpool, internal/nodeerr, and
// internal/egress (only to name the rule of a denial in errors). Nothing
// under internal/ may import it; only cmd/gateway does.
package rpc
