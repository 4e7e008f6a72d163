package main

import "context"

// Exit codes shared by the subcommands.
const (
	exitOK      = 0
	exitFailure = 1 // the command ran and failed (for healthcheck: not SERVING)
	exitUsage   = 2 // bad arguments or configuration, as the flag package does
)

// command is one subcommand. run gets the arguments after its name and
// returns the exit code; it must return once ctx is done.
type command struct {
	summary string
	run     func(ctx context.Context, io *stdio, args []string) int
}

// commands lists every subcommand. A new one (e.g. `fetch`, the curl-like
// client DESIGN.md describes) is a file of its own plus one line here.
var commands = map[string]command{
	"serve":       {summary: "run the gRPC gateway (the default)", run: runServe},
	"version":     {summary: "print version, VCS and Go build information", run: runVersion},
	"healthcheck": {summary: "exit 0 if a gateway reports SERVING on grpc.health.v1", run: runHealthcheck},
	"fetch":       {summary: "curl-like client: one request through a running gateway", run: runFetch},
}
