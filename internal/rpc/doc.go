// Package rpc serves the gateway's gRPC API (httpgateway.v1): it maps proto
// messages to the HTTP engine and the agent pool, owns request handles and
// their event streams, and is the one place that turns errors into gRPC
// statuses.
//
// It may import internal/httpengine, internal/agentpool and internal/nodeerr.
// Nothing under internal/ may import it.
package rpc
