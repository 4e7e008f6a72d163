package main

import "runtime/debug"

// defaultGCPercent is the gateway's GOGC when the environment sets none.
//
// The gateway's live heap is small (pools, handles, buffers in flight) and
// every request allocates a few kilobytes that die at once, so with Go's
// default of 100 the collector runs several times a second under load: it
// was ~20% of the CPU of a small Fetch. 200 lets the heap grow to three
// times the live data between collections, halving how often it runs. In
// the benchmark (bench/, small_get_c32) 300 vs 100 measured 58 vs 68 µs of
// gateway CPU per request; 200 vs 100 was within the shared machine's
// noise. 5,000 requests in flight stay under 64 KiB of RSS each at 200
// (48 KiB measured; 55 KiB at 300).
// GOGC (and GOMEMLIMIT, which Go honours either way) override it.
const defaultGCPercent = 200

// tuneGC applies defaultGCPercent unless GOGC is set.
func tuneGC(lookupEnv func(string) (string, bool)) {
	if _, set := lookupEnv("GOGC"); !set {
		debug.SetGCPercent(defaultGCPercent)
	}
}
