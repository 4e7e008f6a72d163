package main

import (
	"math"
	"slices"
)

// latencies are per-request latencies in microseconds. A benchmark round
// makes at most a few hundred thousand requests, so keeping every sample
// and sorting once gives exact percentiles at little cost.
type latencies []int64

// percentile returns the p-th percentile (0 < p <= 100) by the
// nearest-rank method on sorted samples; 0 when there are none.
func percentile(sorted []int64, p float64) float64 {
	if len(sorted) == 0 {
		return 0
	}
	rank := int(math.Ceil(p / 100 * float64(len(sorted))))
	rank = min(max(rank, 1), len(sorted))
	return float64(sorted[rank-1])
}

// summary returns p50 and p99 of the samples (sorting them in place).
func (l latencies) summary() (p50, p99 float64) {
	slices.Sort(l)
	return percentile(l, 50), percentile(l, 99)
}
