// Command gateway is the httpgateway binary: `gateway serve` (the default)
// runs the gRPC service; `gateway version` and `gateway healthcheck` help
// operators and containers (the runtime image has no shell); `gateway fetch`
// is a curl-like client of a running gateway. Each subcommand
// lives in its own file and is listed once in commands.go; the two clients
// share their connection options (TLS, client certificate, bearer token:
// clientconn.go). egress.go builds the egress policies, the base one and
// one per role, once the listeners are bound, and gives each role's agents
// their hooks.
//
// Configuration and serving belong to internal/config and internal/server;
// this package only wires them to the process (arguments, environment,
// signals, exit codes). Only the serve subcommand imports internal/rpc.
package main
