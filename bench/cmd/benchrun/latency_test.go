package main

import "testing"

func TestPercentile(t *testing.T) {
	hundred := make([]int64, 100)
	for i := range hundred {
		hundred[i] = int64(i + 1)
	}
	tests := []struct {
		name   string
		sorted []int64
		p      float64
		want   float64
	}{
		{name: "none", sorted: nil, p: 50, want: 0},
		{name: "one", sorted: []int64{7}, p: 99, want: 7},
		{name: "median of 1..100", sorted: hundred, p: 50, want: 50},
		{name: "p99 of 1..100", sorted: hundred, p: 99, want: 99},
		{name: "p100 is the max", sorted: hundred, p: 100, want: 100},
		{name: "nearest rank rounds up", sorted: []int64{1, 2, 3}, p: 50, want: 2},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := percentile(tt.sorted, tt.p); got != tt.want {
				t.Fatalf("percentile(%v) = %v, want %v", tt.p, got, tt.want)
			}
		})
	}
}

func TestSummarySorts(t *testing.T) {
	l := latencies{900, 100, 500, 300, 700}
	p50, p99 := l.summary()
	if p50 != 500 || p99 != 900 {
		t.Fatalf("summary = %v, %v; want 500, 900", p50, p99)
	}
}
