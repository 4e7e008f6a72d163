// Package limits counts what each caller identity holds and starts: live
// requests, live request handles and the request rate. A Limiter is keyed
// by identity name (internal/auth); the rpc layer asks it before starting a
// request and gives the slots back when the request ends.
//
// An over-limit answer is an *Exceeded error carrying a Node-style code and,
// where waiting helps, a RetryAfter hint; internal/rpc's toStatus turns it
// into RESOURCE_EXHAUSTED with google.rpc.RetryInfo. The package imports
// only internal/nodeerr; it must never import internal/rpc.
package limits
