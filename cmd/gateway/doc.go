// Command gateway is the httpgateway binary: `gateway serve` (the default)
// runs the gRPC service; `gateway version` and `gateway healthcheck` help
// operators and containers (the runtime image has no shell); `gateway fetch`
// is a curl-like client of a running gateway. Each subcommand
// lives in its own file and is listed once in commands.go.
//
// Configuration and serving belong to internal/config and internal/server;
// this package only wires them to the process (arguments, environment,
// signals, exit codes). Only the serve subcommand imports internal/rpc.
package main
