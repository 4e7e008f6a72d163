package httpengine

import (
	"bufio"
	"context"
	"net"
	"sync"
	"time"

	"github.com/httpgateway/httpgateway/internal/agentpool"
	"github.com/httpgateway/httpgateway/internal/httpengine/wire"
	"github.com/httpgateway/httpgateway/internal/nodeerr"
)

// phase is where a request is in its life, as far as event order cares.
type phase uint8

const (
	phaseWaiting   phase = iota // no socket assigned yet
	phaseAssigned               // socket assigned, connecting
	phaseConnected              // socket connected, no response head yet
	phaseResponse               // response head emitted, body in progress
	phaseClosed                 // request 'close' emitted
)

// ClientRequest is Node's http.ClientRequest with its IncomingMessage. All
// methods are safe for concurrent use. Events go to Events() in Node's order.
//
// Concurrency: mu guards the state below it. Events are appended under mu,
// so their order is the order of the state transitions. Socket writes happen
// without mu held, one writer at a time (the `flushing` flag). The response
// is read on the agent socket's goroutine (ReadResponse), which takes mu only
// to change state and emit. A goroutine never holds mu across a call into the
// agent pool (Acquire, Release, Destroy) because the pool may call back. The
// egress check of an origin behind a proxy, which may resolve a name, runs
// without mu on a goroutine of its own, then takes mu to see whether the
// request is still live before it asks the pool for a socket (acquireFor).
type ClientRequest struct {
	agent   *agentpool.Agent
	oneTime bool // the agent belongs to this request and dies with it
	r       *resolved
	log     *EventLog
	// done is closed when the request reached its end (last event emitted).
	done chan struct{}

	mu   sync.Mutex
	cond sync.Cond // on mu: flush progress and failures, for blocked writers

	phase     phase
	want      *agentpool.Want
	sock      *agentpool.Socket
	conn      net.Conn
	reused    bool
	aborted   bool // abort() was called
	destroyed bool // destroy(), abort() or a failure
	// attemptGen counts the attempts ended (resetAttemptLocked: a
	// redirect, a login, a retry): an acquire that returns after its
	// attempt ended must not store its want over a newer one's, and a
	// socket write that returns after it is not the new attempt's.
	attemptGen uint64
	// socket options asked for before the socket was connected.
	noDelay        *bool
	keepAlive      *bool
	keepAliveDelay time.Duration
	timeout        time.Duration

	// Request side (OutgoingMessage).
	headersSent   bool   // the head was rendered; headers are frozen
	head          []byte // rendered head, kept for a retry
	chunked       bool
	contentLength int64 // -1 unless framing by length
	expectWait    bool  // holding the body until 100 Continue or the timer
	expectTimer   *time.Timer
	ended         bool // end() was called
	finished      bool // 'finish' emitted
	bodyQueued    uint64
	bodySent      uint64
	pend          net.Buffers // queued for the wire, oldest first
	pendBytes     int         // bytes in pend and in the write in progress
	pendGen       uint64      // generation of the last queued write
	flushedGen    uint64      // generation of the last flushed write
	headGen       uint64      // generation of the head
	flushing      bool
	inflightBytes int  // size of the write in progress
	inflightEnd   bool // the write in progress completes the body
	writeErr      error
	retried       bool
	// borrowed are the chunks lent by WriteBorrowed/EndBorrowed and not
	// yet returned (see borrow.go).
	borrowed []borrowedChunk
	// Redirects: the body kept for a 307/308 replay, the hops so far, and
	// a deferred redirect waiting for FollowRedirect.
	replay          [][]byte
	replayBytes     int
	replayable      bool
	dropBody        bool // the redirect dropped the body: later writes are discarded
	redirects       []RedirectInfo
	pendingRedirect *pendingRedirect
	// Login: the credentials answer for the proxy, the login waiting for
	// Login, and how many were asked.
	proxyAuth     string
	pendingLogin  *pendingLogin
	loginAttempts int
	// deadline fires at Options.MaxDuration.
	deadline *time.Timer
	// life is cancelled (lifeCancel) when the request ends, for the origin
	// checks that may block (acquireFor); nil until one needs it.
	life       context.Context
	lifeCancel context.CancelFunc

	// Response side (IncomingMessage).
	resHead      *wire.ResponseHead
	resComplete  bool
	resKeepAlive bool
	resClosed    bool
	resBytes     uint64
	tunnel       *Tunnel
}

// Tunnel is a socket handed over by 'upgrade' or 'connect'.
type Tunnel struct {
	Conn   net.Conn
	Reader *bufio.Reader // may hold bytes past the head already shown as Event.Data
}

// Request creates a ClientRequest like http.request(options) and asks agent
// for a socket at once. With oneTime, the agent is owned by the request and
// destroyed when the request ends (Node's agent: false). bufferBytes bounds
// undelivered body data in the event log (0: the default).
func Request(agent *agentpool.Agent, oneTime bool, o Options, bufferBytes int) (*ClientRequest, error) {
	r, err := resolve(o)
	if err != nil {
		return nil, err
	}
	c := &ClientRequest{
		agent:         agent,
		oneTime:       oneTime,
		r:             r,
		log:           NewEventLog(bufferBytes),
		done:          make(chan struct{}),
		contentLength: -1,
		timeout:       o.Timeout,
		replayable:    true,
	}
	c.cond.L = &c.mu
	c.log.reuse = o.ReuseBodyBuffers
	if err := c.applyProxy(r); err != nil {
		return nil, err
	}
	// Node renders the head at once when an Expect header is set; the caller
	// then waits for 'continue' before sending the body.
	if c.r.headers.Has("expect") {
		c.mu.Lock()
		if err := c.renderHeadLocked(false); err != nil {
			c.mu.Unlock()
			return nil, err
		}
		if v, _ := c.r.headers.first("expect"); equalFoldASCII(v, "100-continue") {
			c.expectWait = true
		}
		c.mu.Unlock()
	}
	if d := o.MaxDuration; d > 0 {
		c.mu.Lock()
		c.deadline = time.AfterFunc(d, func() {
			c.fail(nodeerr.New(nodeerr.ETIMEDOUT, "the request took longer than its maximum duration of "+d.String()), false)
		})
		c.mu.Unlock()
	}
	c.acquireFor(r)
	return c, nil
}

// Events returns the request's event log.
func (c *ClientRequest) Events() *EventLog { return c.log }

// Done is closed when the request emitted its last event.
func (c *ClientRequest) Done() <-chan struct{} { return c.done }

// Agent returns the agent the request uses.
func (c *ClientRequest) Agent() *agentpool.Agent { return c.agent }

// emitLocked appends an event and shows it to the observer.
func (c *ClientRequest) emitLocked(ev Event) {
	o := c.r.opts.Observer
	// The observer may read ev.Data; a reader may deliver the event, and
	// give its buffer back, meanwhile (appending releases the log's lock):
	// the observer holds the buffer too until OnEvent returns.
	ev = c.log.appendStamped(ev, o != nil)
	if o != nil {
		o.OnEvent(ev)
		c.log.Done(&ev)
	}
}

func (c *ClientRequest) emitReq(kind EventKind) {
	c.emitLocked(Event{Kind: kind, Target: TargetRequest})
}
func (c *ClientRequest) emitRes(kind EventKind) {
	c.emitLocked(Event{Kind: kind, Target: TargetResponse})
}

func (c *ClientRequest) emitErrLocked(t Target, err *nodeerr.Error) {
	c.emitLocked(Event{Kind: EventError, Target: t, Err: err})
}

// finishLocked emits nothing; it ends the log after the last event and
// releases what the request holds. Callers emit the final events first.
func (c *ClientRequest) finishLocked() {
	if c.phase == phaseClosed && c.log.Finished() {
		return
	}
	c.phase = phaseClosed
	if c.expectTimer != nil {
		c.expectTimer.Stop()
	}
	if c.pendingRedirect != nil {
		c.pendingRedirect.timer.Stop()
		c.pendingRedirect = nil
	}
	if c.pendingLogin != nil {
		c.pendingLogin.timer.Stop()
		c.pendingLogin = nil
	}
	if c.deadline != nil {
		c.deadline.Stop()
	}
	if c.lifeCancel != nil {
		c.lifeCancel() // an origin check in progress gives up
	}
	c.returnBorrowedLocked() // nothing is written after this
	c.log.Finish()
	c.cond.Broadcast()
	close(c.done)
	if c.oneTime {
		go c.agent.Destroy() // not under mu: the pool may call back
	}
}

// hangUp is Node's connResetException('socket hang up').
func hangUp() *nodeerr.Error { return nodeerr.New(nodeerr.ECONNRESET, "socket hang up") }

// abortedErr is Node's connResetException('aborted'), on the response.
func abortedErr() *nodeerr.Error { return nodeerr.New(nodeerr.ECONNRESET, "aborted") }

// abortErr is the AbortError an AbortSignal raises.
func abortErr(cause error) *nodeerr.Error {
	return nodeerr.Wrap(nodeerr.ABORT_ERR, "The operation was aborted", cause)
}

// Destroy is request.destroy([err]). With a nil err, Node's ECONNRESET
// "socket hang up" (before the response) or "aborted" (on the response).
func (c *ClientRequest) Destroy(err *nodeerr.Error) {
	c.teardown(teardownDestroy, err)
}

// Abort is request.abort().
func (c *ClientRequest) Abort() { c.teardown(teardownAbort, nil) }

// Cancel acts as an AbortSignal firing: error ABORT_ERR, then the closes.
func (c *ClientRequest) Cancel(cause error) { c.teardown(teardownSignal, abortErr(cause)) }

type teardownKind uint8

const (
	teardownDestroy teardownKind = iota
	teardownAbort
	teardownSignal
)

// teardown emits the event sequence of DESIGN.md "Event order" for destroy,
// abort and an AbortSignal at the request's current phase, then closes the
// socket.
func (c *ClientRequest) teardown(kind teardownKind, err *nodeerr.Error) {
	c.mu.Lock()
	if c.destroyed || c.phase == phaseClosed {
		c.mu.Unlock()
		return
	}
	c.destroyed = true
	if kind == teardownAbort {
		c.aborted = true
	}
	want, sock := c.want, c.sock
	switch c.phase {
	case phaseWaiting:
		switch kind {
		case teardownAbort: // abort, close
			c.emitReq(EventAbort)
		default: // error, close
			if err == nil {
				err = hangUp()
			}
			c.emitErrLocked(TargetRequest, err)
		}
		c.emitReq(EventClose)
	case phaseAssigned, phaseConnected:
		if kind == teardownAbort { // abort, error (socket hang up), close
			c.emitReq(EventAbort)
			err = hangUp()
		}
		if err == nil {
			err = hangUp()
		}
		c.emitErrLocked(TargetRequest, err)
		c.emitReq(EventClose)
	case phaseResponse:
		switch kind {
		case teardownAbort: // abort, aborted, error(res), close, close(res)
			c.emitReq(EventAbort)
			c.emitRes(EventAborted)
			c.emitErrLocked(TargetResponse, abortedErr())
			c.emitReq(EventClose)
			c.emitRes(EventClose)
		case teardownSignal: // error, aborted, close, error(res), close(res)
			c.emitErrLocked(TargetRequest, err)
			c.emitRes(EventAborted)
			c.emitReq(EventClose)
			c.emitErrLocked(TargetResponse, abortedErr())
			c.emitRes(EventClose)
		default: // aborted, close, error(res, given or aborted), close(res)
			if err == nil {
				err = abortedErr()
			}
			c.emitRes(EventAborted)
			c.emitReq(EventClose)
			c.emitErrLocked(TargetResponse, err)
			c.emitRes(EventClose)
		}
		c.resClosed = true
	}
	c.finishLocked()
	tun := c.tunnel
	c.mu.Unlock()

	if want != nil && sock == nil {
		want.Cancel() // a socket that still arrives is destroyed in OnSocket
	}
	if sock != nil {
		sock.Destroy(asError(err))
	}
	if tun != nil {
		_ = tun.Conn.Close()
	}
}

// fail ends the request because of a failure seen on the socket: a dial
// error, a read error, a parse error. Before the response: error, close.
// After it: aborted, close, error(res), close(res); a parse error in the body
// is also reported on the request first, as Node's socketOnData does.
func (c *ClientRequest) fail(err *nodeerr.Error, onRequestToo bool) {
	c.mu.Lock()
	if c.destroyed || c.phase == phaseClosed {
		c.mu.Unlock()
		return
	}
	c.destroyed = true
	sock := c.sock
	c.settleFinishLocked()
	if c.phase == phaseResponse && !c.resComplete {
		if onRequestToo {
			c.emitErrLocked(TargetRequest, err)
			err = abortedErr()
		}
		c.emitRes(EventAborted)
		c.emitReq(EventClose)
		c.emitErrLocked(TargetResponse, err)
		c.emitRes(EventClose)
		c.resClosed = true
	} else {
		c.emitErrLocked(TargetRequest, err)
		c.emitReq(EventClose)
	}
	c.finishLocked()
	c.mu.Unlock()
	if sock != nil {
		sock.Destroy(asError(err))
	}
}

// asError converts e to an error interface without the typed-nil trap: a nil
// *nodeerr.Error becomes a nil error.
func asError(e *nodeerr.Error) error {
	if e == nil {
		return nil
	}
	return e
}

// exchange adapts a ClientRequest to agentpool.Exchange without exporting
// the callbacks on ClientRequest itself.
type exchange struct{ c *ClientRequest }

// OnSocket is 'socket': the pool assigned a socket (maybe still connecting).
func (x exchange) OnSocket(s *agentpool.Socket, err error) {
	c := x.c
	if err != nil {
		c.fail(classify(err, c.r), false)
		return
	}
	c.mu.Lock()
	if c.destroyed || c.phase == phaseClosed {
		c.mu.Unlock()
		s.Destroy(nil) // destroyed before the socket arrived; Node destroys it too
		return
	}
	c.sock, c.reused, c.phase = s, s.Reused(), phaseAssigned
	if c.timeout > 0 {
		s.SetTimeout(c.timeout)
	}
	if c.noDelay != nil {
		s.SetNoDelay(*c.noDelay)
	}
	if c.keepAlive != nil {
		s.SetKeepAlive(*c.keepAlive, c.keepAliveDelay)
	}
	info := s.Info()
	c.emitLocked(Event{Kind: EventSocket, Target: TargetRequest, Socket: &info, Reused: c.reused})
	c.mu.Unlock()
}

// OnConnect: the socket is ready for writes, or its dial failed.
func (x exchange) OnConnect(err error) {
	c := x.c
	if err != nil {
		if c.proxyLoginFromDial(err) {
			return
		}
		c.fail(classify(err, c.r), false)
		return
	}
	c.mu.Lock()
	if c.destroyed || c.phase == phaseClosed || c.sock == nil {
		c.mu.Unlock()
		return
	}
	c.conn = c.sock.Conn()
	c.phase = phaseConnected
	if ao, ok := c.r.opts.Observer.(AttemptObserver); ok && !c.reused {
		info := c.sock.Info()
		ao.OnConnected(&info)
	}
	if c.expectWait && c.expectTimer == nil {
		c.expectTimer = time.AfterFunc(c.r.opts.ExpectContinueTimeout, c.releaseExpect)
	}
	c.flushLocked()
	c.mu.Unlock()
}

// OnTimeout is 'timeout': only notifies.
func (x exchange) OnTimeout() {
	c := x.c
	c.mu.Lock()
	if c.phase != phaseClosed && !c.destroyed {
		c.emitReq(EventTimeout)
	}
	c.mu.Unlock()
}

// ReadResponse runs on the socket's goroutine.
func (x exchange) ReadResponse(br *bufio.Reader) { x.c.readResponse(br) }

// classify turns a pool or socket error into the Node error to emit.
func classify(err error, r *resolved) *nodeerr.Error {
	if e := nodeerr.Classify(err, "connect", r.host, r.port); e != nil {
		return e
	}
	return nodeerr.Wrap(nodeerr.ECONNRESET, err.Error(), err)
}

// SetTimeout is request.setTimeout(d): 'timeout' after d of socket inactivity.
func (c *ClientRequest) SetTimeout(d time.Duration) {
	c.mu.Lock()
	c.timeout = d
	s := c.sock
	c.mu.Unlock()
	if s != nil {
		s.SetTimeout(d)
	}
}

// SetNoDelay is request.setNoDelay(noDelay).
func (c *ClientRequest) SetNoDelay(noDelay bool) {
	c.mu.Lock()
	c.noDelay = &noDelay
	s := c.sock
	c.mu.Unlock()
	if s != nil {
		s.SetNoDelay(noDelay)
	}
}

// SetSocketKeepAlive is request.setSocketKeepAlive(enable, initialDelay).
func (c *ClientRequest) SetSocketKeepAlive(enable bool, delay time.Duration) {
	c.mu.Lock()
	c.keepAlive, c.keepAliveDelay = &enable, delay
	s := c.sock
	c.mu.Unlock()
	if s != nil {
		s.SetKeepAlive(enable, delay)
	}
}

// waitCtx blocks on cond until cond() holds, the request ends, or ctx is
// done. Called with mu held; returns with mu held.
func (c *ClientRequest) waitLocked(ctx context.Context, cond func() bool) error {
	if cond() {
		return nil
	}
	stop := context.AfterFunc(ctx, func() {
		c.mu.Lock()
		c.cond.Broadcast()
		c.mu.Unlock()
	})
	defer stop()
	for !cond() {
		if err := ctx.Err(); err != nil {
			return err
		}
		c.cond.Wait()
	}
	return nil
}

func equalFoldASCII(a, b string) bool {
	if len(a) != len(b) {
		return false
	}
	for i := 0; i < len(a); i++ {
		x, y := a[i], b[i]
		if 'A' <= x && x <= 'Z' {
			x += 'a' - 'A'
		}
		if 'A' <= y && y <= 'Z' {
			y += 'a' - 'A'
		}
		if x != y {
			return false
		}
	}
	return true
}
