package bufpool

import (
	"testing"
)

// TestGetLengthAndCapacity: Get returns exactly the length asked for, in a
// buffer of its tier's capacity, or of at least that length over the
// tiers, whatever was put back before.
func TestGetLengthAndCapacity(t *testing.T) {
	p := New()
	for _, tc := range []struct{ n, cap int }{
		{0, 256}, {1, 256}, {256, 256}, {257, 4 << 10}, {4 << 10, 4 << 10}, {4<<10 + 1, 16 << 10},
		{16 << 10, 16 << 10}, {20 << 10, 32 << 10}, {32<<10 + 1, 1 << 20}, {1 << 20, 1 << 20}, {1<<20 + 1, 1<<20 + 1},
	} {
		for round := range 3 { // fresh, then (maybe) reused
			b := p.Get(tc.n)
			if len(*b) != tc.n || cap(*b) < tc.cap || (tc.n <= 1<<20 && cap(*b) != tc.cap) {
				t.Fatalf("round %d: Get(%d): len %d cap %d, want len %d cap %d", round, tc.n, len(*b), cap(*b), tc.n, tc.cap)
			}
			(*b)[:cap(*b)][cap(*b)-1] = 1 // the whole capacity is usable
			p.Put(b)
		}
	}
}

// TestPutOddCapacities: buffers gRPC got elsewhere (any capacity) may be
// put back; each goes where its capacity fills a tier, and a later Get
// still gets the length it asks for and at least its tier's capacity.
func TestPutOddCapacities(t *testing.T) {
	p := New()
	for _, c := range []int{0, 100, 300, 5000, 20000, 40000, 3 << 20} {
		b := make([]byte, 1, c+1)
		p.Put(&b)
	}
	for _, n := range []int{200, 4000, 10000, 30000, 500000, 2 << 20, 4 << 20} {
		b := p.Get(n)
		if len(*b) != n || cap(*b) < n {
			t.Fatalf("Get(%d): len %d cap %d", n, len(*b), cap(*b))
		}
		if i, ok := tierFor(n); ok && cap(*b) < 1<<tierExponents[i] {
			t.Fatalf("Get(%d): cap %d, under the tier's %d", n, cap(*b), 1<<tierExponents[i])
		}
	}
}

func TestTierFor(t *testing.T) {
	for _, tc := range []struct {
		n    int
		tier int
		ok   bool
	}{{0, 0, true}, {1, 0, true}, {2, 0, true}, {255, 0, true}, {256, 0, true}, {257, 1, true},
		{16384, 2, true}, {16385, 3, true}, {1 << 20, 4, true}, {1<<20 + 1, 0, false}} {
		if i, ok := tierFor(tc.n); i != tc.tier || ok != tc.ok {
			t.Errorf("tierFor(%d) = %d, %v; want %d, %v", tc.n, i, ok, tc.tier, tc.ok)
		}
	}
}

// BenchmarkGetPut256K is a streamed body's buffer (a 256 KiB message
// through the 1 MiB tier): no clearing, so independent of the capacity.
func BenchmarkGetPut256K(b *testing.B) {
	p := New()
	b.ReportAllocs()
	for b.Loop() {
		p.Put(p.Get(256 << 10))
	}
}
