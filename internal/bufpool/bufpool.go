package bufpool

import (
	"math/bits"
	"sync"

	"google.golang.org/grpc/mem"
)

// tierExponents are the capacities of the pooled buffers, as powers of
// two: gRPC's default tiers (256 B; 4 KiB, a page; 16 KiB, the HTTP/2
// frame gRPC sends; 32 KiB, io.Copy's; 1 MiB).
var tierExponents = [...]uint8{8, 12, 14, 15, 20}

// Pool is a mem.BufferPool whose Get returns a buffer of the length asked
// for whose content is unspecified (whatever an earlier user left).
type Pool struct {
	tiers [len(tierExponents)]sync.Pool // *[]byte with cap 1<<tierExponents[i]
	large sync.Pool                     // *[]byte over the largest tier, any cap
}

var _ mem.BufferPool = (*Pool)(nil)

// New returns an empty pool.
func New() *Pool { return &Pool{} }

// Get returns a buffer of length n: from the smallest tier that holds n,
// or for larger n a pooled buffer big enough (as gRPC's fallback pool
// does), else a new one.
func (p *Pool) Get(n int) *[]byte {
	if i, ok := tierFor(n); ok {
		if b, ok := p.tiers[i].Get().(*[]byte); ok {
			*b = (*b)[:n]
			return b
		}
		b := make([]byte, n, 1<<tierExponents[i])
		return &b
	}
	if b, ok := p.large.Get().(*[]byte); ok && cap(*b) >= n {
		*b = (*b)[:n]
		return b
	}
	b := make([]byte, n)
	return &b
}

// Put gives b back: into the largest tier its capacity fills, or the
// large pool beyond the tiers. A buffer smaller than the smallest tier is
// dropped.
func (p *Pool) Put(b *[]byte) {
	c := cap(*b)
	if c > 1<<tierExponents[len(tierExponents)-1] {
		p.large.Put(b)
		return
	}
	for i := len(tierExponents) - 1; i >= 0; i-- {
		if size := 1 << tierExponents[i]; c >= size {
			*b = (*b)[:size]
			p.tiers[i].Put(b)
			return
		}
	}
}

// tierFor is the smallest tier whose buffers hold n bytes; false when n is
// over the largest.
func tierFor(n int) (int, bool) {
	exp := uint8(0)
	if n > 1 {
		exp = uint8(bits.Len(uint(n - 1))) // ceil(log2(n))
	}
	for i, e := range tierExponents {
		if exp <= e {
			return i, true
		}
	}
	return 0, false
}
