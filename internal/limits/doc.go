// Package limits bounds what each caller identity holds, starts and moves.
//
// A Limiter is keyed by identity name (internal/auth) for what it counts
// per identity: live requests, live request handles and the request rate;
// the rpc layer asks it before starting a request and gives the slots back
// when the request ends. Its per-request bounds (Options.MaxHeaderBytes,
// MaxRequestBodyBytes, MaxResponseBodyBytes, MaxTunnelDuration,
// MaxTunnelBytes) apply to each request of every identity on its own: the
// rpc layer counts the bytes where they flow and asks the Check methods.
//
// An over-limit answer is an *Exceeded error carrying a Node-style code
// and, where waiting helps (a concurrency slot, the rate), a RetryAfter
// hint; the per-request bounds have none, since the same request would meet
// the same bound. internal/rpc's toStatus turns it into RESOURCE_EXHAUSTED
// (with google.rpc.RetryInfo when RetryAfter is set). The package imports
// only internal/nodeerr; it must never import internal/rpc.
package limits
