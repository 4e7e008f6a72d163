// Package rpc serves the gateway's gRPC API (httpgateway.v1): it maps proto
// messages to the HTTP engine and the agent pool, owns request handles and
// their event streams, and is the one place that turns errors into gRPC
// statuses (toStatus in errors.go).
//
// Files by concept: service.go (Service, Options, Register, Close),
// handles.go (request handles: ids, the live-request cap, the idle reaper),
// agents.go (callers, named agents, each identity's `global`, one-time
// agents), convert.go (proto <-> engine and pool types), errors.go
// (toStatus and the gateway's own codes), limits.go (the per-request
// bounds: header, body and Tunnel bytes, Tunnel duration),
// clientrequest.go (Request and the unary handle RPCs), write.go,
// events.go, exchange.go, fetch.go, tunnel.go (the streaming RPCs),
// agentservice.go, observe.go (the hooks tracing and metrics use:
// Options.NewObserver with RequestInfo, Options.AgentCreated,
// Service.Agents; this package imports nothing of OpenTelemetry).
//
// Callers (internal/auth puts the identity in the context): every request
// handle and agent belongs to the identity that created it; another
// identity gets NOT_FOUND exactly as for an unknown id or name (handleFor,
// peekFor, agents keyed by (owner, role, name), and owned.go for Events
// and Write, whose handlers look requests up by id alone). `global` too is
// per identity, created on its first use, so that its sockets and events
// are its identity's alone; anonymous callers share one. An agent dials
// with the Deps of its caller's role (Options.AgentDepsFor): that is how a
// role's egress policy applies; when an identity's role changes, its agents
// of the old role are destroyed at its next call (see agents). Without
// authentication everything belongs to the anonymous identity "", as
// before. Per-identity limits (Options.Limits, internal/limits) and
// Options.MaxRequestDuration apply in startRequest, the one path every
// request start takes, Fetch included; Fetch gives its slots back when its
// RPC's context ends (context.AfterFunc, no goroutine until then). The
// per-request bounds apply where the bytes flow (limits.go).
//
// Goroutines this package starts, and their ends: the reaper (ends in
// Service.Close); one op reader per Exchange (ends when its Recv fails,
// which gRPC makes happen once the handler returned); one caller-to-socket
// copier per Tunnel (same); one body writer per Fetch with a body over
// 64 KiB (ends when End returns; the handler waits for it); the timer of a
// Tunnel's duration bound, when it fires (it only closes the socket; the
// handler stops it when it returns). Every other RPC runs on its handler
// goroutine.
//
// It may import internal/httpengine (and its wire package, whose types the
// engine's events carry), internal/agentpool, internal/nodeerr, and
// internal/egress (only to name the rule of a denial in errors),
// internal/auth (to read the caller's identity) and internal/limits. Nothing
// under internal/ may import it; only cmd/gateway does.
package rpc
