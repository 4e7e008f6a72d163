package agentpool

import (
	"sync"
	"sync/atomic"
	"time"
)

// EventType names what happened in the pool.
type EventType uint8

const (
	EventSocketCreated   EventType = iota + 1 // a socket was created for a request (dialing)
	EventSocketAssigned                       // a socket was given to a request
	EventSocketReused                         // ... and it was a pooled socket (precedes Assigned)
	EventSocketFreed                          // a socket went to the free list
	EventSocketTimedOut                       // a socket's idle timer fired
	EventSocketClosed                         // a socket left the pool closed; Reason says why
	EventSocketDetached                       // a socket left the pool open (agentRemove)
	EventRequestQueued                        // a request waits for a socket
	EventRequestDequeued                      // a queued request got a socket, or was cancelled/failed (Reason)
)

var eventNames = [...]string{"", "socket_created", "socket_assigned", "socket_reused", "socket_freed",
	"socket_timed_out", "socket_closed", "socket_detached", "request_queued", "request_dequeued"}

func (t EventType) String() string {
	if int(t) < len(eventNames) && t != 0 {
		return eventNames[t]
	}
	return "unknown"
}

// Event is one entry of the agent's event feed.
type Event struct {
	Seq      uint64 // per agent, increasing; a subscriber sees a gap where it dropped events
	Time     time.Time
	Type     EventType
	Name     string // agent name of the socket or request
	SocketID uint64 // 0 for request events
	// RequestID is the Want.ID the event concerns: set on request events,
	// and on socket assigned/reused events.
	RequestID uint64
	Reason    string // for closed, detached and dequeued events
	Err       error  // for closed events: the error that closed the socket, if any
	// Proxy (without credentials) and ProxyRule (the NO_PROXY entry that
	// sent the request direct) describe the request's proxy decision, on
	// assigned and queued events.
	Proxy     string
	ProxyRule string
}

// Subscription receives an agent's events. Delivery never blocks the pool:
// when the buffer is full the event is dropped and counted (Dropped), so a
// slow subscriber sees gaps in Seq instead of stalling every request.
type Subscription struct {
	hub     *eventHub
	c       chan Event
	dropped atomic.Uint64
	closed  bool // guarded by hub.mu
}

// C is the event channel. It is closed by Close and when the agent is
// destroyed (after the events of the destruction).
func (s *Subscription) C() <-chan Event { return s.c }

// Dropped is the number of events lost because the buffer was full.
func (s *Subscription) Dropped() uint64 { return s.dropped.Load() }

// Close ends the subscription and closes C.
func (s *Subscription) Close() {
	h := s.hub
	h.mu.Lock()
	defer h.mu.Unlock()
	if s.closed {
		return
	}
	s.closed = true
	for i, x := range h.subs {
		if x == s {
			h.subs = append(h.subs[:i], h.subs[i+1:]...)
			break
		}
	}
	h.n.Store(int32(len(h.subs)))
	close(s.c)
}

const defaultEventBuffer = 256

// Subscribe starts a subscription with room for buffer events (<= 0 means
// 256). A subscription to a destroyed agent is returned closed.
func (a *Agent) Subscribe(buffer int) *Subscription {
	if buffer <= 0 {
		buffer = defaultEventBuffer
	}
	s := &Subscription{hub: &a.hub, c: make(chan Event, buffer)}
	h := &a.hub
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.closed {
		s.closed = true
		close(s.c)
		return s
	}
	h.subs = append(h.subs, s)
	h.n.Store(int32(len(h.subs)))
	return s
}

// eventHub fans events out to subscriptions. Its mutex nests inside
// Agent.mu (publish is called with Agent.mu held, so events are in the
// order of the state changes) and never blocks: sends are non-blocking.
type eventHub struct {
	n      atomic.Int32 // len(subs), to skip building events nobody reads
	mu     sync.Mutex   // guards the fields below
	seq    uint64
	subs   []*Subscription
	closed bool
}

func (h *eventHub) publish(e Event) {
	if h.n.Load() == 0 {
		return
	}
	e.Time = time.Now()
	h.mu.Lock()
	defer h.mu.Unlock()
	h.seq++
	e.Seq = h.seq
	for _, s := range h.subs {
		select {
		case s.c <- e:
		default:
			s.dropped.Add(1)
		}
	}
}

func (h *eventHub) closeAll() {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.closed = true
	for _, s := range h.subs {
		s.closed = true
		close(s.c)
	}
	h.subs = nil
	h.n.Store(0)
}
