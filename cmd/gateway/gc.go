package main

import "runtime/debug"

// defaultGCPercent is the gateway's GOGC when the environment sets none.
//
// The gateway's live heap is small (pools, handles, buffers in flight) and
// every request allocates a few kilobytes that die at once, so with Go's
// default of 100 the collector runs several times a second under load: it
// was ~20% of the CPU of a small Fetch. 200 lets the heap grow to three
// times the live data between collections: in the benchmark (bench/,
// small_get_c32) that cut the gateway's CPU per request by about a tenth,
// and 5,000 requests in flight stayed under 64 KiB of RSS each.
// GOGC (and GOMEMLIMIT, which Go honours either way) override it.
const defaultGCPercent = 200

// tuneGC applies defaultGCPercent unless GOGC is set.
func tuneGC(lookupEnv func(string) (string, bool)) {
	if _, set := lookupEnv("GOGC"); !set {
		debug.SetGCPercent(defaultGCPercent)
	}
}
