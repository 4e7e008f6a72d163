package agentpool

import (
	"context"
	"crypto/tls"
	"sync"
	"sync/atomic"
	"time"

	"github.com/httpgateway/httpgateway/internal/nodeerr"
	"github.com/httpgateway/httpgateway/internal/proxyenv"
)

// Agent is one http.Agent: named socket pools with Node's limits and
// scheduling. All methods are safe for concurrent use.
//
// Lock rules. Agent.mu guards the Agent fields below it and the fields of
// every Socket and Want marked "guarded by Agent.mu". It is never held while
// calling an Exchange method, while dialing, or while doing socket I/O
// (Close included): functions that change pool state under the lock return
// a list of actions (deliveries, closes) that the caller runs after
// unlocking, as net/http's Transport does with its wantConn deliveries.
// Methods named ...Locked must be called with mu held. The event hub's own
// mutex nests inside mu and never calls out.
type Agent struct {
	name     string
	opts     Options
	deps     Deps
	sessions tls.ClientSessionCache // TLS resumption, shared by all names as Node's https Agent does
	hub      eventHub
	nextID   atomic.Uint64
	tlsCache tlsConfigCache
	proxy    *proxyenv.Config // parsed opts.ProxyEnv; nil when it proxies nothing

	mu        sync.Mutex // guards the following fields, and Socket/Want pool state
	destroyed bool
	pools     map[string]*pool // by agent name of the target
	total     int              // Node's totalSocketCount: connecting, active and free sockets
	freeTotal int              // free sockets across names, to skip eviction scans
	wantSeq   uint64           // last Want.id; ids order queued wants across names
}

// pool is one name's lists: Node's agent.sockets[name],
// agent.freeSockets[name] and agent.requests[name]. Guarded by Agent.mu.
//
// Invariant: a pool never has both free sockets and queued wants. A want
// queues only when its pool has no free socket, and a socket coming back
// goes to the first queued want before the free list.
type pool struct {
	name   string
	active []*Socket // connecting and assigned sockets
	free   []*Socket // oldest first: lifo pops the end, fifo the front
	queue  []*Want   // FIFO
}

// New returns an Agent named name (for inspection only) after validating
// opts. Zero values in opts take Node's defaults (see Options).
func New(name string, opts Options, deps Deps) (*Agent, error) {
	if err := opts.Validate(); err != nil {
		return nil, err
	}
	a := &Agent{
		name:     name,
		opts:     opts.withDefaults(),
		deps:     deps.withDefaults(),
		sessions: tls.NewLRUClientSessionCache(maxCachedSessions),
		pools:    make(map[string]*pool),
	}
	pc, err := proxyenv.Parse(a.opts.ProxyEnv)
	if err != nil {
		return nil, err
	}
	if pc.HTTPProxy != nil || pc.HTTPSProxy != nil {
		a.proxy = pc
	}
	return a, nil
}

// maxCachedSessions is Node's https Agent default.
const maxCachedSessions = 100

// Name returns the name the agent was created with.
func (a *Agent) Name() string { return a.name }

// Options returns the effective options (defaults applied). ProxyEnv is
// the agent's own map, credentials included: callers must not modify it
// nor log it (Snapshot carries a redacted copy).
func (a *Agent) Options() Options { return a.opts }

// Acquire asks for a socket for one request, Node's agent.addRequest. The
// Exchange is called as its interface documents: a free socket or a new
// (still connecting) socket is assigned before Acquire returns; otherwise
// the want waits in its name's queue.
func (a *Agent) Acquire(t Target, x Exchange) *Want {
	t = a.effectiveTarget(t)
	w := &Want{agent: a, x: x, target: t, name: nameOf(t)}
	if t.Proxy == nil {
		// Inspection only: which NO_PROXY entry (if any) sent it direct.
		w.proxyRule = a.ProxyFor(t).Rule
	}
	if err := validateTarget(t); err != nil {
		w.state = wantFailed
		x.OnSocket(nil, err)
		return w
	}
	var acts actions
	a.mu.Lock()
	a.wantSeq++
	w.id = a.wantSeq
	if a.destroyed {
		w.state = wantFailed
		a.mu.Unlock()
		x.OnSocket(nil, errAgentDestroyed())
		return w
	}
	p := a.poolLocked(w.name)
	switch {
	case len(p.queue) == 0 && len(p.free) > 0:
		s := a.takeFreeLocked(p)
		acts = append(acts, a.assignLocked(s, w, true))
	case len(p.queue) == 0 && a.roomForNameLocked(p) && a.roomTotalLocked(p.name, &acts):
		acts = append(acts, a.newSocketLocked(p, w))
	default:
		w.state = wantQueued
		w.queuedAt = time.Now()
		p.queue = append(p.queue, w)
		a.hub.publish(Event{Type: EventRequestQueued, Name: p.name, RequestID: w.id,
			Proxy: proxyDisplay(w.target.Proxy), ProxyRule: w.proxyRule})
	}
	a.mu.Unlock()
	a.perform(acts)
	return w
}

// Destroy closes every socket of the agent, in use ones too (their reads
// fail), fails queued wants with ERR_GATEWAY_AGENT_DESTROYED, and makes
// later Acquire calls fail the same way. Detached sockets are not the
// agent's anymore and stay open. Destroy does not wait for socket
// goroutines: each ends once its connection is closed (see Socket.run).
func (a *Agent) Destroy() {
	var acts actions
	a.mu.Lock()
	if a.destroyed {
		a.mu.Unlock()
		return
	}
	a.destroyed = true
	for _, p := range a.pools {
		for _, w := range p.queue {
			w.state = wantFailed
			a.hub.publish(Event{Type: EventRequestDequeued, Name: p.name, RequestID: w.id, Reason: "agent destroyed"})
			acts = append(acts, action{kind: actFail, w: w, err: errAgentDestroyed()})
		}
		for _, list := range [][]*Socket{p.free, p.active} {
			for _, s := range list {
				acts = append(acts, s.closeLocked("agent destroyed", errAgentDestroyed()))
			}
		}
	}
	a.pools = map[string]*pool{}
	a.total, a.freeTotal = 0, 0
	a.mu.Unlock()
	a.perform(acts)
	a.hub.closeAll()
}

func errAgentDestroyed() *nodeerr.Error {
	return nodeerr.New(nodeerr.ERR_GATEWAY_AGENT_DESTROYED, "The agent was destroyed")
}

func (a *Agent) poolLocked(name string) *pool {
	p := a.pools[name]
	if p == nil {
		p = &pool{name: name}
		a.pools[name] = p
	}
	return p
}

// dropIfEmptyLocked deletes an empty pool so names don't leak (Node
// deletes empty arrays for the same reason).
func (a *Agent) dropIfEmptyLocked(p *pool) {
	if len(p.active) == 0 && len(p.free) == 0 && len(p.queue) == 0 && a.pools[p.name] == p {
		delete(a.pools, p.name)
	}
}

func (a *Agent) roomForNameLocked(p *pool) bool {
	return a.opts.MaxSockets == 0 || len(p.active)+len(p.free) < a.opts.MaxSockets
}

// roomTotalLocked reports whether one more socket fits under
// MaxTotalSockets. When the cap is reached and another name holds a free
// socket, the least recently used of those is closed to make room, so an
// idle socket of one origin never starves a waiting request of another.
func (a *Agent) roomTotalLocked(except string, acts *actions) bool {
	if a.opts.MaxTotalSockets == 0 || a.total < a.opts.MaxTotalSockets {
		return true
	}
	if a.freeTotal == 0 {
		return false
	}
	var victim *Socket
	for name, p := range a.pools {
		if name == except || len(p.free) == 0 {
			continue
		}
		if s := p.free[0]; victim == nil || s.lastUsed.Before(victim.lastUsed) {
			victim = s
		}
	}
	if victim == nil {
		return false
	}
	// Not removeLocked: its room is for the caller, not for serveQueuesLocked.
	*acts = append(*acts, a.unlinkLocked(victim, "evicted for maxTotalSockets", nil))
	return true
}

// takeFreeLocked pops the free socket the scheduling picks.
func (a *Agent) takeFreeLocked(p *pool) *Socket {
	var s *Socket
	if a.opts.Scheduling == FIFO {
		s = p.free[0]
		p.free[0] = nil
		p.free = p.free[1:]
	} else {
		n := len(p.free) - 1
		s = p.free[n]
		p.free[n] = nil
		p.free = p.free[:n]
	}
	a.freeTotal--
	return s
}

// assignLocked gives socket s (free, or just released by its previous
// exchange) to w. The returned action delivers OnSocket and OnConnect(nil).
func (a *Agent) assignLocked(s *Socket, w *Want, fromFree bool) action {
	p := a.pools[s.name]
	if fromFree {
		p.active = append(p.active, s)
	}
	w.state = wantAssigned
	s.state = StateActive
	s.x = w.x
	s.gen++
	s.reused = true
	s.requests++
	s.lastUsed = time.Now()
	// Node's setRequestSocket leaves a hint-shortened timeout in place on a
	// reused socket; the gateway restores the agent timeout so a request
	// never inherits the previous response's Keep-Alive hint.
	s.setTimerLocked(a.opts.Timeout)
	a.hub.publish(Event{Type: EventSocketReused, Name: s.name, SocketID: s.id, RequestID: w.id})
	a.hub.publish(Event{Type: EventSocketAssigned, Name: s.name, SocketID: s.id, RequestID: w.id,
		Proxy: proxyDisplay(w.target.Proxy), ProxyRule: w.proxyRule})
	return action{kind: actReuse, s: s, w: w, gen: s.gen}
}

// newSocketLocked counts a new connecting socket for w; the returned action
// delivers OnSocket and then starts the socket goroutine, which dials.
func (a *Agent) newSocketLocked(p *pool, w *Want) action {
	ctx, cancel := context.WithCancel(context.Background())
	s := &Socket{
		agent:      a,
		id:         a.nextID.Add(1),
		name:       p.name,
		target:     w.target,
		created:    time.Now(),
		wake:       make(chan struct{}, 1),
		done:       make(chan struct{}),
		state:      StateConnecting,
		x:          w.x,
		gen:        1,
		requests:   1,
		cancelDial: cancel,
		noDelay:    true, // Go's default, and Node's http client default
		proxyRule:  w.proxyRule,
	}
	s.lastUsed = s.created
	w.state = wantAssigned
	p.active = append(p.active, s)
	a.total++
	s.setTimerLocked(a.opts.Timeout)
	a.hub.publish(Event{Type: EventSocketCreated, Name: s.name, SocketID: s.id})
	a.hub.publish(Event{Type: EventSocketAssigned, Name: s.name, SocketID: s.id, RequestID: w.id,
		Proxy: proxyDisplay(w.target.Proxy), ProxyRule: w.proxyRule})
	return action{kind: actNew, s: s, w: w, ctx: ctx}
}

// removeLocked takes s out of the pool for good (closed), and lets queued
// wants use the room it leaves. The actions close its connection.
func (a *Agent) removeLocked(s *Socket, reason string, err error) actions {
	acts := actions{a.unlinkLocked(s, reason, err)}
	return append(acts, a.serveQueuesLocked()...)
}

// unlinkLocked takes s out of its pool lists and closes it, without giving
// the room away.
func (a *Agent) unlinkLocked(s *Socket, reason string, err error) action {
	p := a.pools[s.name]
	if p != nil {
		if s.state == StateFree {
			p.free = removeSocket(p.free, s)
			a.freeTotal--
		} else {
			p.active = removeSocket(p.active, s)
		}
	}
	a.total--
	act := s.closeLocked(reason, err)
	if p != nil {
		a.dropIfEmptyLocked(p)
	}
	return act
}

func removeSocket(list []*Socket, s *Socket) []*Socket {
	for i, x := range list {
		if x == s {
			copy(list[i:], list[i+1:])
			list[len(list)-1] = nil
			return list[:len(list)-1]
		}
	}
	return list
}

// serveQueuesLocked gives room that appeared (a socket closed, detached or
// freed) to queued wants: oldest want first across names, each name's
// queue in order. A name whose own socket comes back is served in Release.
func (a *Agent) serveQueuesLocked() actions {
	var acts actions
	if a.destroyed {
		return nil
	}
	for {
		var best *pool
		for _, p := range a.pools {
			if len(p.queue) == 0 || !a.roomForNameLocked(p) {
				continue
			}
			if best == nil || p.queue[0].id < best.queue[0].id {
				best = p
			}
		}
		if best == nil || !a.roomTotalLocked(best.name, &acts) {
			return acts
		}
		w := best.dequeueLocked()
		a.hub.publish(Event{Type: EventRequestDequeued, Name: best.name, RequestID: w.id})
		acts = append(acts, a.newSocketLocked(best, w))
	}
}

func (p *pool) dequeueLocked() *Want {
	w := p.queue[0]
	p.queue[0] = nil
	p.queue = p.queue[1:]
	return w
}
