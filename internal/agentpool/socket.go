package agentpool

import (
	"bufio"
	"context"
	"crypto/tls"
	"net"
	"sync/atomic"
	"time"

	"github.com/httpgateway/httpgateway/internal/nodeerr"
)

// SocketState is where a socket is in its life.
type SocketState uint8

const (
	// StateConnecting: assigned to its first request, dialing.
	StateConnecting SocketState = iota
	// StateActive: connected and assigned to a request (Node's agent.sockets).
	StateActive
	// StateFree: connected and idle in the free list (agent.freeSockets).
	StateFree
	// StateClosed: out of the pool, connection closed.
	StateClosed
	// StateDetached: out of the pool but open, owned by whoever called
	// Detach (Node's 'agentRemove').
	StateDetached
)

func (s SocketState) String() string {
	switch s {
	case StateConnecting:
		return "connecting"
	case StateActive:
		return "active"
	case StateFree:
		return "free"
	case StateClosed:
		return "closed"
	case StateDetached:
		return "detached"
	}
	return "unknown"
}

// readBufSize is the size of each socket's bufio.Reader, allocated once
// connected. net/http uses the same size for its read buffer (and a second
// one for writes, which the pool leaves to the engine).
const readBufSize = 4 << 10

// Socket is one pooled connection.
//
// Ownership: the fields under "set once by the socket goroutine" are
// written before the socket leaves StateConnecting, under Agent.mu, and
// never change afterwards; whoever observed the socket connected (the
// exchange after OnConnect(nil), snapshots) may read them without the lock.
type Socket struct {
	agent   *Agent
	id      uint64
	name    string
	target  Target
	created time.Time
	// wake tells the socket goroutine that its state changed (assignment
	// delivered, released, destroyed, detached). Capacity 1, sends never
	// block: the goroutine re-reads the state under Agent.mu anyway.
	wake chan struct{}
	// done is closed by the socket goroutine when it ends.
	done chan struct{}

	// set once by the socket goroutine (see above)
	conn     *trackedConn
	br       *bufio.Reader
	tcp      *net.TCPConn // nil for unix sockets
	laddr    net.Addr
	raddr    net.Addr
	tlsInfo  *TLSInfo
	proxyTLS *TLSInfo
	timings  *DialTimings // read-only once set; shared with SocketInfo

	bytesRead    atomic.Uint64
	bytesWritten atomic.Uint64
	lastActivity atomic.Int64 // monotonic nanoseconds since created of the last read or write
	timerFired   atomic.Bool  // the idle timer fired and waits for activity to re-arm

	// guarded by Agent.mu
	state          SocketState
	x              Exchange // current exchange, nil while free
	gen            uint64   // assignment number; each assignment gets a new one
	delivered      uint64   // gen whose OnSocket and OnConnect have returned
	busy           bool     // the socket goroutine is in OnConnect or ReadResponse and will not touch br until it re-reads the state
	reused         bool     // this assignment got a pooled socket
	requests       uint64   // assignments so far
	lastUsed       time.Time
	closeReason    string
	closeErr       error
	cancelDial     context.CancelFunc // non-nil while dialing
	timeout        time.Duration
	timer          *time.Timer
	keepAlive      bool
	keepAliveDelay time.Duration
	noDelay        bool

	// proxyRule is the NO_PROXY entry that sent the request that created
	// the socket direct. Immutable.
	proxyRule string
}

// ID is unique within the agent.
func (s *Socket) ID() uint64 { return s.id }

// Name is the agent name of the socket's target.
func (s *Socket) Name() string { return s.name }

// Reused reports whether the current assignment got a pooled socket
// (Node's request.reusedSocket).
func (s *Socket) Reused() bool {
	s.agent.mu.Lock()
	defer s.agent.mu.Unlock()
	return s.reused
}

// Conn is the connection, valid after OnConnect(nil). Reads and writes on
// it are counted and reset the idle timer. Once a read fails, later reads
// fail with the same error.
func (s *Socket) Conn() net.Conn {
	if s.conn == nil {
		return nil
	}
	return s.conn
}

// Reader is the socket's buffered reader over Conn, valid after
// OnConnect(nil). It may already hold bytes (or an error) that arrived
// while the socket waited.
func (s *Socket) Reader() *bufio.Reader { return s.br }

// signal wakes the socket goroutine without blocking.
func (s *Socket) signal() {
	select {
	case s.wake <- struct{}{}:
	default:
	}
}

// closeLocked marks s closed and returns the action that closes its
// connection. The caller has removed s from its pool lists. If s is still
// dialing, its dial is cancelled and the socket goroutine closes whatever
// connection the dial still returns.
func (s *Socket) closeLocked(reason string, err error) action {
	// x is kept: a socket closed while dialing still owes its exchange
	// OnConnect.
	s.state = StateClosed
	s.closeReason = reason
	if err == nil {
		err = errSocketHangUp()
	}
	s.closeErr = err
	if s.cancelDial != nil {
		s.cancelDial()
		s.cancelDial = nil
	}
	if s.timer != nil {
		s.timer.Stop()
	}
	s.agent.hub.publish(Event{Type: EventSocketClosed, Name: s.name, SocketID: s.id, Reason: reason, Err: err})
	s.signal()
	act := action{kind: actClose}
	if s.conn != nil {
		act.conn = s.conn
	}
	return act
}

func errSocketHangUp() *nodeerr.Error {
	return nodeerr.New(nodeerr.ECONNRESET, "socket hang up")
}

// Release ends the exchange's use of s. reusable means the exchange ended
// cleanly and keep-alive is allowed; keepAliveHint is the server's
// `Keep-Alive: timeout=N` (0 when absent). The socket then goes to the
// next queued want of its name (even when the agent is not keepAlive, as
// in Node), else to the free list when the agent is keepAlive, the name
// has fewer than MaxFreeSockets free and the hint leaves time; otherwise
// it is destroyed.
func (s *Socket) Release(reusable bool, keepAliveHint time.Duration) {
	a := s.agent
	var acts actions
	a.mu.Lock()
	switch s.state {
	case StateActive:
	case StateConnecting:
		acts = a.removeLocked(s, "released before connect", nil)
		fallthrough
	default:
		a.mu.Unlock()
		a.perform(acts)
		return
	}
	p := a.pools[s.name]
	s.x = nil
	s.lastUsed = time.Now()
	reason := ""
	if !reusable {
		reason = "not reusable"
	} else if s.conn.failed() {
		reason = "connection ended"
	}
	if reason == "" && len(p.queue) > 0 {
		w := p.dequeueLocked()
		a.hub.publish(Event{Type: EventRequestDequeued, Name: p.name, RequestID: w.id})
		acts = append(acts, a.assignLocked(s, w, false))
		a.mu.Unlock()
		a.perform(acts)
		return
	}
	timeout := a.opts.Timeout
	if reason == "" {
		switch {
		case !a.opts.KeepAlive:
			reason = "agent keepAlive is false"
		case len(p.free) >= a.opts.MaxFreeSockets:
			reason = "maxFreeSockets reached"
		case keepAliveHint > 0:
			// Node's keepSocketAlive: the hint only shortens a timeout the
			// agent has (an agent without timeout keeps the socket until
			// the server closes it, which the free socket's reader notices
			// at once), and a hint within the buffer means "do not keep".
			h := keepAliveHint - a.opts.KeepAliveTimeoutBuffer
			if h <= 0 {
				reason = "keep-alive hint too short"
			} else if h < timeout {
				timeout = h
			}
		}
	}
	if reason != "" {
		acts = a.removeLocked(s, reason, nil)
		a.mu.Unlock()
		a.perform(acts)
		return
	}
	p.active = removeSocket(p.active, s)
	p.free = append(p.free, s)
	a.freeTotal++
	s.state = StateFree
	s.setTimerLocked(timeout)
	kaDelay := a.opts.KeepAliveMsecs
	needKA := !s.keepAlive || s.keepAliveDelay != kaDelay
	s.keepAlive, s.keepAliveDelay = true, kaDelay
	a.hub.publish(Event{Type: EventSocketFreed, Name: s.name, SocketID: s.id})
	// A name waiting only because of MaxTotalSockets may now evict this
	// socket.
	acts = a.serveQueuesLocked()
	a.mu.Unlock()
	if needKA {
		s.applyKeepAlive(true, kaDelay)
	}
	s.signal()
	a.perform(acts)
}

// Destroy closes s now and takes it out of the pool; the room it leaves
// lets a queued want dial. err (may be nil) is recorded as the close
// reason and is what OnConnect reports when s was still connecting.
func (s *Socket) Destroy(err error) {
	a := s.agent
	a.mu.Lock()
	if s.state == StateClosed || s.state == StateDetached {
		a.mu.Unlock()
		return
	}
	reason := "destroyed"
	if c := nodeerr.Code(err); c != "" {
		reason += ": " + c
	} else if err != nil {
		reason += ": " + err.Error()
	}
	acts := a.removeLocked(s, reason, err)
	a.mu.Unlock()
	a.perform(acts)
}

// aLongTimeAgo is a read deadline in the past, to interrupt a blocked read.
var aLongTimeAgo = time.Unix(1, 0)

// Detach is Node's 'agentRemove': s leaves the pool's accounting (its slot
// goes to a queued want) but stays open, and the caller owns the connection
// and reader from now on; the pool never touches them again. It returns
// nil, nil unless s is connected and assigned. Detach returns only once the
// socket goroutine has let go of the reader.
func (s *Socket) Detach() (net.Conn, *bufio.Reader) {
	a := s.agent
	a.mu.Lock()
	if s.state != StateActive {
		a.mu.Unlock()
		return nil, nil
	}
	p := a.pools[s.name]
	p.active = removeSocket(p.active, s)
	a.total--
	a.dropIfEmptyLocked(p)
	s.state = StateDetached
	s.x = nil
	if s.timer != nil {
		// Timeouts belong to the new owner.
		s.timer.Stop()
	}
	busy := s.busy
	a.hub.publish(Event{Type: EventSocketDetached, Name: s.name, SocketID: s.id, Reason: "agentRemove"})
	acts := a.serveQueuesLocked()
	a.mu.Unlock()
	s.signal()
	if !busy {
		// The goroutine may be blocked in Peek: interrupt it without
		// closing, and wait until it has ended so that br has one owner.
		_ = s.conn.SetReadDeadline(aLongTimeAgo)
		<-s.done
		_ = s.conn.SetReadDeadline(time.Time{})
	}
	a.perform(acts)
	return s.conn, s.br
}

// SetTimeout sets the idle timer: after d without reads or writes,
// OnTimeout is called (or, on a free socket, the socket is destroyed).
// 0 disables it. Like Node's socket.setTimeout, it fires once and is
// re-armed by the next activity.
func (s *Socket) SetTimeout(d time.Duration) {
	a := s.agent
	a.mu.Lock()
	defer a.mu.Unlock()
	if s.state == StateClosed || s.state == StateDetached {
		return
	}
	s.setTimerLocked(d)
}

// SetNoDelay sets TCP_NODELAY, now if connected, else once connected.
func (s *Socket) SetNoDelay(noDelay bool) {
	a := s.agent
	a.mu.Lock()
	s.noDelay = noDelay
	connected := s.state == StateActive || s.state == StateFree
	a.mu.Unlock()
	if connected && s.tcp != nil {
		_ = s.tcp.SetNoDelay(noDelay)
	}
}

// SetKeepAlive sets TCP keep-alive, now if connected, else once connected.
// initialDelay 0 keeps the previous delay (Node's semantics).
func (s *Socket) SetKeepAlive(enable bool, initialDelay time.Duration) {
	a := s.agent
	a.mu.Lock()
	s.keepAlive = enable
	if initialDelay > 0 {
		s.keepAliveDelay = initialDelay
	}
	delay := s.keepAliveDelay
	connected := s.state == StateActive || s.state == StateFree
	a.mu.Unlock()
	if connected {
		s.applyKeepAlive(enable, delay)
	}
}

func (s *Socket) applyKeepAlive(enable bool, delay time.Duration) {
	if s.tcp == nil {
		return
	}
	cfg := net.KeepAliveConfig{Enable: enable, Idle: -1, Interval: -1, Count: -1}
	if enable && delay > 0 {
		cfg.Idle = delay
	}
	// Errors only mean the connection is already gone; the reader notices.
	_ = s.tcp.SetKeepAliveConfig(cfg)
}

// run is the socket goroutine: it dials, delivers OnConnect, then serves
// reads until the socket is closed or detached (see loop). It ends:
// after a failed dial; when the socket is closed (whoever closes it closes
// the connection, which unblocks any read); when it is detached (without
// closing). It closes done on its way out.
func (s *Socket) run(ctx context.Context) {
	defer close(s.done)
	a := s.agent
	d, err := a.dial(ctx, s.name, s.target)
	a.mu.Lock()
	if s.cancelDial != nil {
		s.cancelDial()
		s.cancelDial = nil
	}
	if s.state == StateClosed {
		// Destroyed while dialing (or inside OnSocket): the destroy error
		// wins over whatever the cancelled dial returned.
		err = s.closeErr
		x := s.x
		a.mu.Unlock()
		if d.conn != nil {
			_ = d.conn.Close()
		}
		x.OnConnect(err)
		return
	}
	x := s.x
	if err != nil {
		acts := a.removeLocked(s, "connect failed", err)
		a.mu.Unlock()
		x.OnConnect(err)
		a.perform(acts)
		return
	}
	s.conn = &trackedConn{Conn: d.conn, s: s}
	s.br = bufio.NewReaderSize(s.conn, readBufSize)
	s.tcp, s.tlsInfo, s.proxyTLS, s.timings = d.tcp, d.tls, d.proxyTLS, d.timings
	s.laddr, s.raddr = d.conn.LocalAddr(), d.conn.RemoteAddr()
	s.state = StateActive
	s.busy = true
	gen := s.gen
	noDelay, ka, kaDelay := s.noDelay, s.keepAlive, s.keepAliveDelay
	a.mu.Unlock()
	s.touch()
	if s.tcp != nil {
		if !noDelay {
			_ = s.tcp.SetNoDelay(false)
		}
		if ka {
			s.applyKeepAlive(true, kaDelay)
		}
	}
	x.OnConnect(nil)
	a.mu.Lock()
	s.busy = false
	if s.gen == gen {
		s.delivered = gen
	}
	a.mu.Unlock()
	s.loop()
}

// loop serves a connected socket until it is closed or detached.
func (s *Socket) loop() {
	a := s.agent
	var served uint64 // last assignment whose ReadResponse ran
	for {
		a.mu.Lock()
		switch s.state {
		case StateClosed, StateDetached:
			a.mu.Unlock()
			return
		case StateActive:
			if s.gen != served && s.delivered == s.gen && s.x != nil {
				served = s.gen
				x := s.x
				s.busy = true
				a.mu.Unlock()
				x.ReadResponse(s.br)
				a.mu.Lock()
				s.busy = false
				a.mu.Unlock()
				continue
			}
			// Waiting for the assignment's OnSocket/OnConnect to be
			// delivered, or for the exchange to release the socket.
			a.mu.Unlock()
			<-s.wake
		case StateFree:
			a.mu.Unlock()
			// Block until the server says something. On a free socket any
			// byte or error means it is unusable; if the socket was
			// assigned meanwhile, the byte or error stays in br for the
			// exchange (the keep-alive race surfaces as a read error on a
			// reused socket).
			_, err := s.br.Peek(1)
			a.mu.Lock()
			if s.state != StateFree {
				a.mu.Unlock()
				continue
			}
			reason := "closed by server"
			switch {
			case err == nil:
				reason = "unsolicited data on free socket"
				err = nodeerr.New(nodeerr.ECONNRESET, reason)
			case !isEOF(err):
				reason = "error on free socket"
			}
			if ne := nodeerr.Classify(err, "read", "", 0); ne != nil {
				err = ne
			}
			acts := a.removeLocked(s, reason, err)
			a.mu.Unlock()
			a.perform(acts)
			return
		default:
			a.mu.Unlock()
			return
		}
	}
}

func (s *Socket) touch() {
	s.lastActivity.Store(int64(time.Since(s.created)))
}

// setTimerLocked (re)starts the idle timer with d. The timer is a runtime
// timer, not a goroutine; I/O only stores a timestamp, and the timer
// callback re-arms itself for the remaining time when there was activity.
func (s *Socket) setTimerLocked(d time.Duration) {
	s.timeout = d
	s.timerFired.Store(false)
	if d <= 0 {
		if s.timer != nil {
			s.timer.Stop()
		}
		return
	}
	s.touch()
	if s.timer == nil {
		s.timer = time.AfterFunc(d, s.onTimer)
	} else {
		s.timer.Reset(d)
	}
}

// onTimer runs on the runtime's timer goroutine.
func (s *Socket) onTimer() {
	a := s.agent
	a.mu.Lock()
	if s.timeout <= 0 || s.state == StateClosed || s.state == StateDetached || s.timerFired.Load() {
		a.mu.Unlock()
		return
	}
	idle := time.Duration(int64(time.Since(s.created)) - s.lastActivity.Load())
	if idle < s.timeout {
		s.timer.Reset(s.timeout - idle)
		a.mu.Unlock()
		return
	}
	s.timerFired.Store(true)
	a.hub.publish(Event{Type: EventSocketTimedOut, Name: s.name, SocketID: s.id})
	if s.state == StateFree {
		// Node: "Sockets in the freeSockets list will be automatically
		// destroyed and removed from the array on 'timeout'."
		acts := a.removeLocked(s, "timeout", nodeerr.New(nodeerr.ETIMEDOUT, "free socket timed out"))
		a.mu.Unlock()
		a.perform(acts)
		return
	}
	x := s.x
	a.mu.Unlock()
	if x != nil {
		x.OnTimeout()
	}
}

// rearm restarts a fired idle timer on new activity.
func (s *Socket) rearm() {
	a := s.agent
	a.mu.Lock()
	if s.timerFired.Load() && s.timeout > 0 && s.timer != nil && s.state != StateClosed && s.state != StateDetached {
		s.timerFired.Store(false)
		s.timer.Reset(s.timeout)
	}
	a.mu.Unlock()
}

// TLSInfo describes a TLS connection.
type TLSInfo struct {
	Version     string // "TLSv1.3", as Node's getProtocol()
	CipherSuite string // IANA name
	ALPN        string
	PeerSubject string
	ServerName  string
	Resumed     bool
}

func tlsInfoOf(cs tls.ConnectionState) *TLSInfo {
	ti := &TLSInfo{
		Version:     tlsVersionName(cs.Version),
		CipherSuite: tls.CipherSuiteName(cs.CipherSuite),
		ALPN:        cs.NegotiatedProtocol,
		ServerName:  cs.ServerName,
		Resumed:     cs.DidResume,
	}
	if len(cs.PeerCertificates) > 0 {
		ti.PeerSubject = cs.PeerCertificates[0].Subject.String()
	}
	return ti
}
