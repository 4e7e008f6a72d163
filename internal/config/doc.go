// Package config owns the gateway's operator-facing configuration: the one
// Config struct with its documented defaults, loading it from flags, GATEWAY_*
// environment variables and an optional YAML config file (in that order of
// precedence), validating it once at the edge, and the redacted view that is
// logged at start.
//
// Every setting is declared once, in the field table (fields.go): its flag
// name is also its config-file key, and its environment variable is that name
// upper-cased with "-" turned into "_" behind "GATEWAY_" (listen ->
// --listen, GATEWAY_LISTEN, "listen:").
//
// Settings that are richer than one value keep a flat, list-shaped form so
// that every layer can carry them: the per-role egress settings are
// "<role>:<setting>" items of egress-roles (ParseEgressRoles, egressrole.go).
//
// The package knows nothing of gRPC, HTTP or the egress policy itself; it only
// checks the syntax of what the later layers will use. It must never import
// internal/httpengine, internal/agentpool, internal/rpc or internal/server.
package config
