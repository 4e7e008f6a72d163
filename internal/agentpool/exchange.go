package agentpool

import (
	"bufio"
	"context"
	"net"
)

// Exchange is the engine's side of one request on one socket. The pool
// calls, in this order:
//
//   - OnSocket(s, nil) once, when s is assigned: at once for a free socket
//     and for a new socket still connecting (Node emits 'socket' right after
//     createConnection); a queued want gets it when a socket frees up or
//     room appears. OnSocket(nil, err) instead when the want fails before any
//     socket (invalid target, agent destroyed).
//   - OnConnect(err) exactly once after OnSocket(s, nil): nil when s is
//     connected (TLS done) and ready for writes, immediately for a reused
//     socket; otherwise the dial error (ECONNREFUSED, ENOTFOUND, EAI_AGAIN,
//     ETIMEDOUT, TLS codes, egress denial) or, when the socket was destroyed
//     before it connected, the destroy error. After an error the socket is
//     already out of the pool and nothing else is called.
//   - ReadResponse(br) on the socket's goroutine after OnConnect(nil)
//     returned, unless the exchange already released, destroyed or detached
//     the socket. The engine reads the response from br and returns; the pool
//     does nothing with the socket until the engine calls Release, Destroy
//     or Detach (inside ReadResponse or later).
//   - OnTimeout() from a timer goroutine whenever the socket's idle timer
//     fires while the socket is assigned. It only notifies.
//
// OnSocket and OnConnect may run synchronously inside Acquire, Release,
// Destroy or Cancel on the caller's goroutine: the engine must not hold a
// lock of its own across those calls. The pool never calls an Exchange
// method while holding its own lock.
type Exchange interface {
	OnSocket(s *Socket, err error)
	OnConnect(err error)
	ReadResponse(br *bufio.Reader)
	OnTimeout()
}

type actionKind uint8

const (
	actClose actionKind = iota // close conn
	actFail                    // w.x.OnSocket(nil, err)
	actNew                     // w.x.OnSocket(s, nil), then start s's goroutine
	actReuse                   // w.x.OnSocket(s, nil), w.x.OnConnect(nil)
)

// action is work decided under Agent.mu and done after unlocking it.
type action struct {
	kind actionKind
	s    *Socket
	w    *Want
	err  error
	gen  uint64
	ctx  context.Context
	conn net.Conn
}

type actions []action

// perform runs actions in order. It must be called without Agent.mu.
func (a *Agent) perform(acts actions) {
	for _, act := range acts {
		switch act.kind {
		case actClose:
			if act.conn != nil {
				_ = act.conn.Close()
			}
		case actFail:
			act.w.x.OnSocket(nil, act.err)
		case actNew:
			act.w.x.OnSocket(act.s, nil)
			// Started only after OnSocket returned, so OnConnect can never
			// overtake it.
			go act.s.run(act.ctx)
		case actReuse:
			a.deliverReuse(act.s, act.w.x, act.gen)
		}
	}
}

// deliverReuse tells x it got the connected socket s (assignment gen), then
// lets s's goroutine call ReadResponse.
func (a *Agent) deliverReuse(s *Socket, x Exchange, gen uint64) {
	x.OnSocket(s, nil)
	a.mu.Lock()
	var err error
	if s.gen == gen && s.state == StateClosed {
		// The engine destroyed it inside OnSocket; OnConnect still comes
		// exactly once.
		err = s.closeErr
	}
	a.mu.Unlock()
	x.OnConnect(err)
	a.mu.Lock()
	if s.gen == gen {
		s.delivered = gen
	}
	a.mu.Unlock()
	s.signal()
}
