package httpengine

import (
	"context"
	"net"
	"strconv"
	"strings"
	"sync/atomic"

	"github.com/httpgateway/httpgateway/internal/httpengine/wire"
	"github.com/httpgateway/httpgateway/internal/nodeerr"
)

// headersSentErr is ERR_HTTP_HEADERS_SENT for a header edit after the head went out.
func headersSentErr(what string) *nodeerr.Error {
	return nodeerr.New(nodeerr.ERR_HTTP_HEADERS_SENT, "Cannot "+what+" headers after they are sent to the client")
}

var crlf = []byte("\r\n")

// editHeaders runs fn on the outgoing headers unless the head was rendered.
func (c *ClientRequest) editHeaders(what string, fn func(h *OutgoingHeaders) error) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.headersSent {
		return headersSentErr(what)
	}
	return fn(&c.r.headers)
}

// SetHeader is request.setHeader(name, values...).
func (c *ClientRequest) SetHeader(name string, values ...string) error {
	return c.editHeaders("set", func(h *OutgoingHeaders) error { return h.Set(name, values...) })
}

// AppendHeader is request.appendHeader(name, values...).
func (c *ClientRequest) AppendHeader(name string, values ...string) error {
	return c.editHeaders("append", func(h *OutgoingHeaders) error { return h.Append(name, values...) })
}

// RemoveHeader is request.removeHeader(name).
func (c *ClientRequest) RemoveHeader(name string) error {
	return c.editHeaders("remove", func(h *OutgoingHeaders) error { h.Remove(name); return nil })
}

// GetHeader is request.getHeader(name).
func (c *ClientRequest) GetHeader(name string) (values []string, raw string, ok bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.r.headers.Get(name)
}

// HasHeader is request.hasHeader(name).
func (c *ClientRequest) HasHeader(name string) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.r.headers.Has(name)
}

// GetHeaders is request.getHeaders().
func (c *ClientRequest) GetHeaders() []HeaderValues {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.r.headers.All()
}

// GetHeaderNames is request.getHeaderNames().
func (c *ClientRequest) GetHeaderNames() []string {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.r.headers.Names()
}

// GetRawHeaderNames is request.getRawHeaderNames().
func (c *ClientRequest) GetRawHeaderNames() []string {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.r.headers.RawNames()
}

// shouldKeepAlive is Node's ClientRequest.shouldKeepAlive: keep-alive unless
// the agent could never reuse the socket (keepAlive off and no socket limit).
func (c *ClientRequest) shouldKeepAliveLocked() bool {
	o := c.agent.Options()
	if v, ok := c.r.headers.first("connection"); ok {
		return !containsTokenFold(v, "close")
	}
	return o.KeepAlive || o.MaxSockets > 0
}

// renderHeadLocked renders the head as Node's _storeHeader does and queues
// it. ended says whether end() was called with the whole body known, which
// allows a Content-Length.
func (c *ClientRequest) renderHeadLocked(ended bool) error {
	if c.headersSent {
		return nil
	}
	lines := c.r.headers.Lines()
	_, userConn := c.r.headers.first("connection")
	_, userCL := c.r.headers.first("content-length")
	te, userTE := c.r.headers.first("transfer-encoding")
	if pa := c.proxyAuthorizationLocked(); pa != "" {
		lines = append(lines, Header{Name: "Proxy-Authorization", Value: pa})
	}
	if !userConn {
		v := "close"
		if c.shouldKeepAliveLocked() {
			v = "keep-alive"
		}
		lines = append(lines, Header{Name: "Connection", Value: v})
	}
	switch {
	case userTE:
		c.chunked = strings.HasSuffix(strings.ToLower(strings.TrimSpace(te)), "chunked")
	case userCL:
		c.chunked = false
		if cl, _ := c.r.headers.first("content-length"); cl != "" {
			if n, err := strconv.ParseInt(strings.TrimSpace(cl), 10, 64); err == nil && n >= 0 {
				c.contentLength = n // the caller's framing: the upload's total
			}
		}
	case !chunkedByDefault(c.r.method):
		// Node sends a GET/HEAD/DELETE/... body, if any, without framing.
		c.chunked = false
	case ended && !c.r.opts.ChunkedEncoding:
		c.contentLength = int64(c.bodyQueued)
		lines = append(lines, Header{Name: "Content-Length", Value: strconv.FormatUint(c.bodyQueued, 10)})
	default:
		c.chunked = true
		lines = append(lines, Header{Name: "Transfer-Encoding", Value: "chunked"})
	}
	head, err := wire.AppendRequestHead(make([]byte, 0, 256), c.r.method, c.r.requestTarget(), lines)
	if err != nil {
		return err
	}
	c.head = head
	c.headersSent = true
	c.headGen = c.queueLocked(head)
	return nil
}

// queueLocked appends buffers for the wire and returns their generation.
func (c *ClientRequest) queueLocked(bufs ...[]byte) uint64 {
	c.pend = append(c.pend, bufs...)
	for _, b := range bufs {
		c.pendBytes += len(b)
	}
	c.pendGen++
	return c.pendGen
}

// writeStateErrLocked is the error Node throws or emits for a write now.
func (c *ClientRequest) writeStateErrLocked() error {
	switch {
	case c.ended:
		return nodeerr.New(nodeerr.ERR_STREAM_WRITE_AFTER_END, "write after end")
	case c.destroyed || c.phase == phaseClosed:
		return nodeerr.New(nodeerr.ERR_STREAM_DESTROYED, "Cannot call write after a stream was destroyed")
	}
	return nil
}

// queueBodyLocked frames p for the wire and queues it (and keeps a copy
// for a redirect replay when the mode may need one).
func (c *ClientRequest) queueBodyLocked(p []byte) uint64 {
	if len(p) == 0 || c.dropBody {
		return c.pendGen
	}
	c.recordReplayLocked(p)
	return c.queueFramedLocked(p)
}

// queueFramedLocked frames p with the current framing and queues it.
func (c *ClientRequest) queueFramedLocked(p []byte) uint64 {
	c.bodyQueued += uint64(len(p))
	if c.chunked {
		return c.queueLocked(wire.AppendChunkHeader(nil, len(p)), p, crlf)
	}
	return c.queueLocked(p)
}

// writeHighWater is how many queued, unwritten bytes a request holds before
// Write waits: what keeps memory bounded while the socket is slow, not yet
// connected, or waiting for a 'login' or redirect decision.
const writeHighWater = 256 << 10

// Write is request.write(p). The head goes out with the first chunk in one
// write. p now belongs to the request (it is written later, and kept for a
// replay when the request may be sent again): the caller must not modify
// it. Write returns at once while little is queued; past writeHighWater it
// waits for the socket to take the bytes (the backpressure), for the
// request to fail, or for ctx.
func (c *ClientRequest) Write(ctx context.Context, p []byte) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.writeLocked(ctx, p)
}

func (c *ClientRequest) writeLocked(ctx context.Context, p []byte) error {
	if err := c.writeStateErrLocked(); err != nil {
		return err
	}
	if err := c.renderHeadLocked(false); err != nil {
		return err
	}
	c.queueBodyLocked(p)
	c.flushLocked()
	return c.waitRoomLocked(ctx)
}

// End is request.end(p): the last chunk, then the body's end. Called before
// any write, it frames the body with Content-Length (unless the method or
// the options say otherwise). Like Node's end() it never waits: 'finish'
// tells when everything was handed to the operating system. p belongs to
// the request from now on.
func (c *ClientRequest) End(_ context.Context, p []byte) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.endLocked(p)
}

func (c *ClientRequest) endLocked(p []byte) error {
	if c.ended {
		// Node ignores a second end() without data and fails one with data.
		if len(p) > 0 {
			return nodeerr.New(nodeerr.ERR_STREAM_WRITE_AFTER_END, "write after end")
		}
		return nil
	}
	if err := c.writeStateErrLocked(); err != nil {
		return err
	}
	if !c.headersSent {
		c.bodyQueued = uint64(len(p))
		if err := c.renderHeadLocked(true); err != nil {
			return err
		}
		c.bodyQueued = 0
	}
	c.queueBodyLocked(p)
	if c.chunked {
		c.queueLocked([]byte(wire.LastChunk))
	}
	c.ended = true
	c.flushLocked()
	c.maybeFinishLocked()
	c.maybeReleaseLocked()
	return nil
}

// FlushHeaders is request.flushHeaders(): the head goes out now.
func (c *ClientRequest) FlushHeaders() error {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.destroyed || c.phase == phaseClosed {
		return nil
	}
	if err := c.renderHeadLocked(false); err != nil {
		return err
	}
	c.flushLocked()
	return nil
}

// waitRoomLocked waits while more than writeHighWater bytes are queued.
func (c *ClientRequest) waitRoomLocked(ctx context.Context) error {
	err := c.waitLocked(ctx, func() bool {
		return c.pendBytes <= writeHighWater || c.writeErr != nil || c.phase == phaseClosed || c.destroyed
	})
	if err != nil {
		return err
	}
	if c.pendBytes <= writeHighWater {
		return nil
	}
	if c.writeErr != nil {
		return c.writeErr
	}
	return nodeerr.New(nodeerr.ERR_STREAM_DESTROYED, "Cannot call write after a stream was destroyed")
}

// flushLocked writes queued buffers when the socket is connected and nobody
// else is writing. It drops mu during the write, so state may change under
// it; the loop re-checks. While waiting for 100 Continue only the head goes.
// Borrowed chunks that are written go back to their owner on the way out.
func (c *ClientRequest) flushLocked() {
	defer c.returnBorrowedLocked()
	for c.conn != nil && !c.flushing && len(c.pend) > 0 && c.writeErr == nil &&
		!c.destroyed && c.phase != phaseClosed {
		bufs, gen := c.pend, c.pendGen
		if c.expectWait {
			if c.flushedGen >= c.headGen {
				return
			}
			bufs, gen = c.pend[:1], c.headGen // the head is always queued first
			c.pend = c.pend[1:]
		} else {
			c.pend = nil
			// The final write goes in two: all but its last
			// inflightFinishBytes, then those, so that when the server
			// answers during the final write, settleFinishLocked can tell
			// the body was delivered (see there).
			if c.ended && gen == c.pendGen {
				bufs, c.pend = splitTail(bufs, inflightFinishBytes)
			}
		}
		conn, attempt := c.conn, c.attemptGen
		c.flushing = true
		c.inflightBytes = 0
		for _, b := range bufs {
			c.inflightBytes += len(b)
		}
		c.inflightEnd = c.ended && len(c.pend) == 0 && gen == c.pendGen
		n := c.inflightBytes
		c.mu.Unlock()
		if h := testHookBeforeWrite.Load(); h != nil {
			(*h)(n)
		}
		_, err := bufs.WriteTo(conn)
		c.mu.Lock()
		c.flushing, c.inflightEnd = false, false
		if c.attemptGen != attempt {
			// A redirect, retry or login started a new attempt during the
			// write: its outcome (often a failure: the old socket was
			// closed under it) is the old attempt's, and none of the
			// counts below are the new one's. Flush the new queue, if any.
			c.cond.Broadcast()
			continue
		}
		if err != nil {
			// The read side sees the same failure and reports it; writers
			// get it here.
			c.writeErr = classify(err, c.r)
			c.cond.Broadcast()
			return
		}
		c.flushedGen = gen
		// A new attempt may have reset the queue during the write.
		c.pendBytes = max(c.pendBytes-c.inflightBytes, 0)
		if len(c.pend) == 0 {
			c.bodySent = c.bodyQueued
		}
		c.cond.Broadcast()
		if c.destroyed || c.phase == phaseClosed {
			return
		}
		c.maybeFinishLocked()
		// The reader may have finished the response during the write and
		// left the release to us (see maybeReleaseLocked).
		c.maybeReleaseLocked()
	}
}

// testHookBeforeWrite is set by tests only: it runs before each socket
// write (with its size), without mu, so a test can hold a write in
// progress.
var testHookBeforeWrite atomic.Pointer[func(n int)]

// maybeFinishLocked emits 'finish' once end() was called and every queued
// byte was handed to the operating system: after the last flush, or at
// end() itself when nothing was left to write.
func (c *ClientRequest) maybeFinishLocked() {
	if c.ended && !c.finished && !c.flushing && c.conn != nil && len(c.pend) == 0 &&
		c.flushedGen == c.pendGen && c.writeErr == nil && !c.destroyed && c.phase != phaseClosed {
		c.emitFinishLocked()
	}
}

func (c *ClientRequest) emitFinishLocked() {
	c.finished = true
	c.emitLocked(Event{Kind: EventFinish, Target: TargetRequest, Bytes: c.bodyQueued})
}

// settleFinishLocked is called by the reader before it reports what the
// server answered. If the request's final write is still in flight and is
// small enough to sit whole in the socket buffer, the server cannot have
// answered before those bytes reached the operating system: 'finish' is
// emitted now, so the order is Node's (finish, then response or error) no
// matter which goroutine gets the lock first. A large final write may truly
// still be in progress (an early answer to an upload), and then the
// response comes first, as in Node.
func (c *ClientRequest) settleFinishLocked() {
	if c.flushing && c.inflightEnd && !c.finished && c.inflightBytes <= inflightFinishBytes {
		c.emitFinishLocked()
	}
}

// inflightFinishBytes is the largest in-flight final write considered
// delivered once the server answers (well under a loopback socket buffer).
// flushLocked writes a longer final write's last inflightFinishBytes
// apart, so that a server that read the whole body and answered sees
// 'finish' before 'response', whatever the body's size.
const inflightFinishBytes = 64 << 10

// splitTail splits bufs before its last n bytes: head is everything before
// them (nil when bufs holds n bytes or fewer), tail the rest. It copies no
// bytes; a buffer that straddles the cut is resliced.
func splitTail(bufs net.Buffers, n int) (head, tail net.Buffers) {
	total := 0
	for _, b := range bufs {
		total += len(b)
	}
	if total <= n {
		return bufs, nil
	}
	cut := total - n // bytes that go in head
	for i, b := range bufs {
		if cut < len(b) {
			head = append(append(net.Buffers(nil), bufs[:i]...), b[:cut])
			tail = append(net.Buffers{b[cut:]}, bufs[i+1:]...)
			if cut == 0 {
				head = head[:len(head)-1]
			}
			return head, tail
		}
		cut -= len(b)
	}
	return bufs, nil // not reached: total > n
}

// releaseExpect stops holding the body after an Expect: 100-continue head:
// on 100 Continue, on a final response, or when the timer fires.
func (c *ClientRequest) releaseExpect() {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.releaseExpectLocked()
}

func (c *ClientRequest) releaseExpectLocked() {
	if !c.expectWait {
		return
	}
	c.expectWait = false
	if c.expectTimer != nil {
		c.expectTimer.Stop()
	}
	c.flushLocked()
}

// containsTokenFold reports whether the comma-separated list v has token t.
func containsTokenFold(v, t string) bool {
	for _, part := range strings.Split(v, ",") {
		if equalFoldASCII(strings.TrimSpace(part), t) {
			return true
		}
	}
	return false
}
