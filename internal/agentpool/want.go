package agentpool

import "time"

// Want is one request waiting for, or given, a socket.
type Want struct {
	agent  *Agent
	x      Exchange
	target Target
	name   string
	// proxyRule is the NO_PROXY entry that sent the request direct ("" if
	// none); set before the want is published, immutable.
	proxyRule string

	// guarded by Agent.mu
	id       uint64 // per agent, in Acquire order
	state    wantState
	queuedAt time.Time
}

// ID is the want's number, per agent, in Acquire order; events about the
// request carry it as RequestID.
func (w *Want) ID() uint64 {
	w.agent.mu.Lock()
	defer w.agent.mu.Unlock()
	return w.id
}

type wantState uint8

const (
	wantNew wantState = iota
	wantQueued
	wantAssigned
	wantFailed
	wantCancelled
)

// ProxyRule is the NO_PROXY entry of the agent's ProxyEnv that sent this
// request direct, "" when none did (it is proxied, the agent has no proxy
// for its protocol, or no entry matched).
func (w *Want) ProxyRule() string { return w.proxyRule }

// Name is the agent name of the want's target.
func (w *Want) Name() string { return w.name }

// Cancel withdraws a want. It reports true when the want was still queued:
// it is removed and no callback will come. False means OnSocket was or will
// be called; the engine then releases or destroys that socket itself.
func (w *Want) Cancel() bool {
	a := w.agent
	a.mu.Lock()
	defer a.mu.Unlock()
	if w.state != wantQueued {
		return false
	}
	w.state = wantCancelled
	if p := a.pools[w.name]; p != nil {
		for i, q := range p.queue {
			if q == w {
				p.queue = append(p.queue[:i], p.queue[i+1:]...)
				break
			}
		}
		a.dropIfEmptyLocked(p)
	}
	a.hub.publish(Event{Type: EventRequestDequeued, Name: w.name, RequestID: w.id, Reason: "cancelled"})
	return true
}
