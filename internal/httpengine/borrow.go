package httpengine

import (
	"context"
	"unsafe"
)

// Borrowed chunks: a caller that recycles its buffers (the gRPC server's
// receive buffers, see internal/rpc's Write) lends a body chunk instead of
// giving it away, and gets it back through a release func once nothing in
// the request refers to it any more. Write's chunks are the request's for
// good and become garbage once written; at upload speed that garbage is
// most of the gateway's GC work.
//
// The rule that makes a return safe, checked by returnBorrowedLocked: a
// chunk is returned when no write is in progress (c.flushing is false: the
// write in progress holds the buffers it took from pend) and no buffer in
// pend points into it. Nothing else in the request keeps body bytes: the
// 307/308 replay keeps copies (recordReplayLocked), and once the request
// is closed nothing is written again, so a closed request returns
// everything. Returning late is harmless (the owner allocates anew);
// returning early would put another caller's bytes on this wire, so every
// path that is not sure keeps the chunk.

// borrowedChunk is a lent chunk and the func that returns it.
type borrowedChunk struct {
	p       []byte
	release func()
}

// WriteBorrowed is Write for a lent chunk: release is called exactly once,
// under the request's lock and without blocking, when the request no
// longer refers to p: once p was handed to the operating system, dropped
// (a redirect that discards the body, a new attempt), refused (the error
// returned) or the request closed. That may be before WriteBorrowed
// returns. The caller must not modify p until then.
func (c *ClientRequest) WriteBorrowed(ctx context.Context, p []byte, release func()) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.borrowLocked(p, release)
	defer c.returnBorrowedLocked()
	return c.writeLocked(ctx, p)
}

// EndBorrowed is End for a lent last chunk; release is as WriteBorrowed's.
func (c *ClientRequest) EndBorrowed(_ context.Context, p []byte, release func()) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.borrowLocked(p, release)
	defer c.returnBorrowedLocked()
	return c.endLocked(p)
}

func (c *ClientRequest) borrowLocked(p []byte, release func()) {
	c.borrowed = append(c.borrowed, borrowedChunk{p: p, release: release})
}

// returnBorrowedLocked releases the borrowed chunks the request no longer
// refers to (see the rule above). It is called after every write, when a
// new attempt resets pend, when the request closes, and when
// WriteBorrowed/EndBorrowed return.
func (c *ClientRequest) returnBorrowedLocked() {
	if len(c.borrowed) == 0 || c.flushing {
		return
	}
	closed := c.phase == phaseClosed || c.destroyed
	kept := c.borrowed[:0]
	for _, b := range c.borrowed {
		if !closed && refersTo(c.pend, b.p) {
			kept = append(kept, b)
			continue
		}
		b.release()
	}
	clear(c.borrowed[len(kept):])
	c.borrowed = kept
}

// refersTo reports whether a buffer of bufs starts inside p: what queuing
// p (whole, or resliced by splitTail) leaves in pend. Chunk framing and
// heads are buffers of their own.
func refersTo(bufs [][]byte, p []byte) bool {
	if len(p) == 0 {
		return false
	}
	start := uintptr(unsafe.Pointer(unsafe.SliceData(p)))
	end := start + uintptr(len(p))
	for _, b := range bufs {
		if len(b) == 0 {
			continue
		}
		if q := uintptr(unsafe.Pointer(unsafe.SliceData(b))); q >= start && q < end {
			return true
		}
	}
	return false
}
