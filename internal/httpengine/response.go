package httpengine

import (
	"bufio"
	"errors"
	"io"
	"strings"
	"sync"

	"github.com/httpgateway/httpgateway/internal/httpengine/wire"
	"github.com/httpgateway/httpgateway/internal/nodeerr"
)

const (
	// maxInformational caps the 1xx heads accepted before the final one, so
	// an upstream cannot keep a request busy with endless 103s.
	maxInformational = 32
	// readChunk is the most body bytes one 'data' event carries.
	readChunk = 256 << 10
	// handOverChunk: a read at least this large keeps its buffer as the
	// event's data; a smaller one is copied out.
	handOverChunk = 32 << 10
)

// chunkPool holds read buffers shared by all responses.
var chunkPool = sync.Pool{New: func() any { b := make([]byte, readChunk); return &b }}

func (c *ClientRequest) parseOptions() wire.ParseOptions {
	o := c.r.opts
	return wire.ParseOptions{MaxHeaderSize: o.MaxHeaderSize, MaxHeadersCount: o.MaxHeadersCount, Insecure: o.InsecureHTTPParser}
}

// readResponse reads the response on the socket's goroutine: 1xx heads, the
// final head, the body, and hands the socket back or over.
func (c *ClientRequest) readResponse(br *bufio.Reader) {
	opts := c.parseOptions()
	var head *wire.ResponseHead
	for infos := 0; ; infos++ {
		h, err := wire.ReadResponseHead(br, opts)
		if err != nil {
			c.readFailed(err, false)
			return
		}
		if h.StatusCode >= 200 || h.StatusCode == 101 {
			head = h
			break
		}
		if infos == maxInformational {
			c.readFailed(nodeerr.New(nodeerr.ERR_GATEWAY_TOO_MANY_1XX, "too many informational (1xx) responses"), false)
			return
		}
		c.mu.Lock()
		if c.destroyed || c.phase == phaseClosed {
			c.mu.Unlock()
			return
		}
		c.settleFinishLocked()
		if h.StatusCode == 100 {
			c.emitReq(EventContinue)
		}
		c.emitLocked(Event{Kind: EventInformation, Target: TargetRequest, Head: h})
		if h.StatusCode == 100 {
			// After both events, as in Node, where the body goes from the
			// 'continue' handler: the flush may emit 'finish'.
			c.releaseExpectLocked()
		}
		c.mu.Unlock()
	}

	if head.StatusCode == 101 || (c.r.method == "CONNECT" && head.StatusCode < 300) {
		c.handOver(head, br)
		return
	}

	framing := wire.BodyFraming(c.r.method, head)
	if c.r.opts.Redirect != RedirectManual && isRedirect(head.StatusCode) && c.handleRedirect(head, br, framing) {
		return
	}
	if (head.StatusCode == 407 || head.StatusCode == 401) && c.authChallenge(head, br, framing) {
		return
	}
	c.mu.Lock()
	if c.destroyed || c.phase == phaseClosed {
		c.mu.Unlock()
		return
	}
	c.resHead = head
	c.phase = phaseResponse
	bodyDropped := c.expectWait // a final answer to Expect: the body is never sent
	if bodyDropped {
		c.expectWait = false
		c.writeErr = nodeerr.New(nodeerr.ERR_STREAM_DESTROYED, "the server answered before 100 Continue; body not sent")
		c.cond.Broadcast()
	}
	c.settleFinishLocked()
	c.emitLocked(Event{Kind: EventResponse, Target: TargetRequest, Head: head, Reused: c.reused, Redirects: c.redirects})
	c.mu.Unlock()

	body := wire.NewBodyReader(br, framing, opts)
	// The event log keeps each chunk until it is delivered, so a chunk must
	// own its bytes. A read that fills a good part of buf is handed over as
	// it is (no copy; buf is replaced); a small read is copied out to an
	// exact-size slice and buf is reused, so small events pin no more
	// memory than their data. buf comes from a pool and goes back to it.
	buf := chunkPool.Get().(*[]byte)
	defer func() { chunkPool.Put(buf) }()
	for {
		if !c.log.WaitRoom(c.done) {
			return
		}
		b := *buf
		if framing.Kind == wire.FramingLength {
			if rem := framing.Length - int64(c.resBytes); rem < int64(len(b)) && rem > 0 {
				b = b[:rem]
			}
		}
		n, err := body.Read(b)
		if n > 0 {
			var data []byte
			var handed *[]byte
			if n >= handOverChunk {
				data, handed = b[:n:n], buf
				buf = chunkPool.Get().(*[]byte)
			} else {
				data = append([]byte(nil), b[:n]...)
			}
			c.mu.Lock()
			if c.destroyed || c.phase == phaseClosed {
				c.mu.Unlock()
				return
			}
			c.resBytes += uint64(n)
			ev := Event{Kind: EventData, Target: TargetResponse, Data: data, Bytes: c.resBytes}
			if c.log.reuse {
				ev.buf = handed
			}
			c.emitLocked(ev)
			c.mu.Unlock()
		}
		if err == io.EOF {
			break
		}
		if err != nil {
			c.readFailed(err, true)
			return
		}
	}

	c.mu.Lock()
	defer c.mu.Unlock()
	if c.destroyed || c.phase == phaseClosed {
		return
	}
	c.emitLocked(Event{Kind: EventEnd, Target: TargetResponse, Trailers: body.Trailers(), Bytes: c.resBytes})
	c.resComplete = true
	c.resKeepAlive = !bodyDropped && head.KeepAlive(framing)
	if !c.ended {
		// The server answered before the body was ended: the socket carries
		// a half-sent request and can never be reused.
		c.resKeepAlive = false
		c.finished = true
	}
	c.maybeReleaseLocked()
}

// maybeReleaseLocked ends a successful exchange once both the request was
// flushed ('finish') and the response ended: the socket goes back to the
// agent (or is closed), then the response and the request close, in Node's
// order. The socket is released before the close events so that an observer
// reacting to 'close' finds it free.
func (c *ClientRequest) maybeReleaseLocked() {
	// Never while a write is in progress: the socket would go to another
	// request with our bytes still being written; the writer calls again.
	if !c.finished || !c.resComplete || c.flushing || c.phase == phaseClosed || c.destroyed {
		return
	}
	if s := c.sock; s != nil {
		reusable := c.resKeepAlive && c.shouldKeepAliveLocked()
		hint := c.resHead.KeepAliveTimeout
		// Safe under mu: Release never calls back into this request, only
		// into requests waiting for a socket, which never hold their lock
		// while calling the pool.
		s.Release(reusable, hint)
	}
	c.emitRes(EventClose)
	c.emitReq(EventClose)
	c.resClosed = true
	c.finishLocked()
}

// handOver gives the socket to the caller after a 101 or a CONNECT 2xx:
// 'upgrade' or 'connect' with the bytes already read past the head, then
// 'close', as Node does.
func (c *ClientRequest) handOver(head *wire.ResponseHead, br *bufio.Reader) {
	n := br.Buffered()
	peeked, _ := br.Peek(n)
	extra := append([]byte(nil), peeked...)
	_, _ = br.Discard(n)

	c.mu.Lock()
	sock := c.sock
	c.mu.Unlock()
	if sock == nil {
		return // destroyed meanwhile: teardown closed the socket
	}
	// Detach yields nothing when the socket was destroyed in the meantime
	// (a destroy racing the hand-over): then there is no connection to
	// hand over or to close, and teardown reported the request.
	conn, rd := sock.Detach()

	c.mu.Lock()
	defer c.mu.Unlock()
	if conn == nil || c.destroyed || c.phase == phaseClosed {
		if conn != nil {
			_ = conn.Close()
		}
		return
	}
	c.resHead = head
	c.settleFinishLocked()
	c.tunnel = &Tunnel{Conn: conn, Reader: rd}
	kind := EventUpgrade
	if c.r.method == "CONNECT" && head.StatusCode != 101 {
		kind = EventConnect
	}
	c.emitLocked(Event{Kind: kind, Target: TargetRequest, Head: head, Data: extra})
	c.emitReq(EventClose)
	c.finishLocked()
}

// TakeTunnel returns the socket handed over by 'upgrade' or 'connect', once.
func (c *ClientRequest) TakeTunnel() (*Tunnel, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	t := c.tunnel
	c.tunnel = nil
	return t, t != nil
}

// Dispose frees what a finished request may still hold: a handed-over socket
// nobody took. A request that has not ended is destroyed.
func (c *ClientRequest) Dispose() {
	c.Destroy(nil)
	if t, ok := c.TakeTunnel(); ok {
		_ = t.Conn.Close()
	}
}

// readFailed handles a failed read or parse: retried once on a fresh socket
// when the agent allows it (see retryLocked), else reported as Node does.
func (c *ClientRequest) readFailed(err error, inBody bool) {
	ne := nodeerr.As(err)
	if ne == nil {
		ne = classify(err, c.r)
	}
	if !inBody {
		if c.retry(ne) {
			return
		}
		c.mu.Lock()
		reused := c.reused
		c.mu.Unlock()
		if reused && nothingReceived(ne) {
			ne = &nodeerr.Error{Code: ne.Code, Message: ne.Message, Syscall: ne.Syscall, Address: ne.Address, Port: ne.Port, Err: &ReusedSocketError{Err: ne.Err}}
		}
		c.fail(ne, false)
		return
	}
	if strings.HasPrefix(ne.Code, "HPE_") {
		c.fail(ne, true)
		return
	}
	c.fail(abortedErr(), false)
}

// nothingReceived reports whether a failure before the response happened
// before any response byte arrived: a reset or a close with an empty head.
func nothingReceived(ne *nodeerr.Error) bool {
	return ne.Code == nodeerr.ECONNRESET && !errors.Is(ne, io.ErrUnexpectedEOF)
}

// ReusedSocketError marks a failure on a socket reused from the pool before
// any response byte arrived: the keep-alive race, safe to retry for an
// idempotent request.
type ReusedSocketError struct{ Err error }

func (e *ReusedSocketError) Error() string { return "reused socket closed before the response" }
func (e *ReusedSocketError) Unwrap() error { return e.Err }

// IsReusedSocket reports whether err marks the keep-alive race.
func IsReusedSocket(err error) bool {
	var r *ReusedSocketError
	return errors.As(err, &r)
}

// idempotent methods (RFC 9110 section 9.2.2).
func idempotent(method string) bool {
	switch method {
	case "GET", "HEAD", "OPTIONS", "TRACE", "PUT", "DELETE":
		return true
	}
	return false
}

// retry re-sends the request on a new socket once, when the agent opted in,
// the failed socket was reused, nothing of the response arrived, the method
// is idempotent and no body byte was taken from the caller.
func (c *ClientRequest) retry(ne *nodeerr.Error) bool {
	c.mu.Lock()
	if c.destroyed || c.phase == phaseClosed || !c.reused || c.retried ||
		!c.agent.Options().RetryReusedIdempotent || !idempotent(c.r.method) ||
		c.bodyQueued > 0 || !nothingReceived(ne) {
		c.mu.Unlock()
		return false
	}
	c.retried = true
	old := c.sock
	c.startAttemptLocked(c.r, true, AttemptRetry)
	c.mu.Unlock()
	old.Destroy(asError(ne))
	c.acquire()
	return true
}
