package rpc

import (
	"context"
	"sort"
	"strconv"
	"sync"
	"time"

	"github.com/httpgateway/httpgateway/internal/agentpool"
	"github.com/httpgateway/httpgateway/internal/auth"
)

// globalAgent is the name of the agent that always exists.
const globalAgent = "global"

// caller is who makes a call: the identity that owns what the call creates
// and may touch, and the role whose egress policy its requests dial under.
// Both are "" for the anonymous identity (and without authentication).
type caller struct{ owner, role string }

// callerOf returns the caller of the call in ctx (internal/auth put it
// there).
func callerOf(ctx context.Context) caller {
	id, _ := auth.FromContext(ctx)
	return caller{owner: id.Name, role: id.Role}
}

// agentEntry is one named agent.
type agentEntry struct {
	agent   *agentpool.Agent
	created time.Time
	// owner is the identity that created the agent (for `global`: the
	// identity it was created for), role the role it had then: the agent
	// dials with that role's Deps.
	owner, role string
	// propagate is AgentOptions.propagate_trace_context (default true):
	// requests through the agent get W3C trace context headers unless
	// they say otherwise. The pool knows nothing of tracing, so it is kept
	// here.
	propagate bool
}

// agents is the registry of named agents. Every agent belongs to one
// identity in one role and is registered under (owner, role, name): two
// callers may each have an agent "pool", and another caller's agent answers
// NOT_FOUND exactly as a name nobody uses. `global` is no exception: each
// identity has its own, created on its first use (New creates the
// anonymous identity's, which every anonymous caller shares), so its
// sockets, events and policy are that identity's alone. It cannot be
// destroyed. One-time agents (Node's `agent: false`) are not registered:
// the request that owns one destroys it.
//
// An agent dials with the Deps of its role (depsFor), so the egress policy
// that applies is the role's. When an identity shows up with another role
// than its agents were created under (its tokens file entry changed), those
// agents are retired: unregistered and destroyed, with the requests still
// running through them, before the call goes on. Nothing created under the
// old role dials again, except the one-time agents of requests already
// running, which end with their request.
type agents struct {
	depsFor  func(role string) agentpool.Deps
	proxyEnv map[string]string // every `global`'s proxyEnv (Options.GlobalProxyEnv)
	// created, if set, sees every named agent once, each identity's
	// `global` included (Options.AgentCreated). Called without mu held.
	created func(*agentpool.Agent)

	mu     sync.Mutex // guards the fields below
	m      map[agentKey]*agentEntry
	roles  map[string]string // owner -> the role its agents in m belong to
	closed bool
}

// agentKey names an agent in the registry.
type agentKey struct{ owner, role, name string }

func newAgents(depsFor func(role string) agentpool.Deps, proxyEnv map[string]string, created func(*agentpool.Agent)) *agents {
	r := &agents{depsFor: depsFor, proxyEnv: proxyEnv, created: created,
		m: map[agentKey]*agentEntry{}, roles: map[string]string{}}
	// The anonymous identity's `global` exists from the start, as Node's
	// does: without authentication it is the one every caller uses.
	if _, err := r.get(globalAgent, caller{}); err != nil {
		panic("rpc: the global agent: " + err.Error())
	}
	return r
}

// globalOptions are the options of every `global`: Node's global agent's,
// with the gateway's proxyEnv.
func (r *agents) globalOptions() agentpool.Options {
	o := agentpool.GlobalOptions()
	o.ProxyEnv = r.proxyEnv
	return o
}

// get returns c's agent named name ("" means `global`), creating c's
// `global` on its first use.
func (r *agents) get(name string, c caller) (*agentEntry, error) {
	if name == "" {
		name = globalAgent
	}
	key := agentKey{c.owner, c.role, name}
	r.mu.Lock()
	retired := r.retireLocked(c)
	e, ok := r.m[key]
	var fresh *agentpool.Agent
	var err error
	switch {
	case ok:
	case name != globalAgent:
		err = gwError(codeAgentNotFound, "no agent named "+strconv.Quote(name))
	case r.closed:
		err = gwError(codeShuttingDown, "the gateway is shutting down")
	default:
		// agentpool.New neither blocks nor calls back, so `global` is
		// made under mu: two first calls cannot make two.
		if fresh, err = agentpool.New(globalAgent, r.globalOptions(), r.depsFor(c.role)); err == nil {
			e = &agentEntry{agent: fresh, created: time.Now(), owner: c.owner, role: c.role, propagate: true}
			r.m[key] = e
		}
	}
	r.mu.Unlock()
	r.destroyAll(retired)
	if fresh != nil && r.created != nil {
		r.created(fresh)
	}
	if err != nil {
		return nil, err
	}
	return e, nil
}

// retireLocked unregisters and returns c.owner's agents of another role
// than c.role, and records c.role as the owner's role. It scans the
// registry only when the role changed.
func (r *agents) retireLocked(c caller) []*agentEntry {
	prev, seen := r.roles[c.owner]
	if seen && prev == c.role {
		return nil
	}
	r.roles[c.owner] = c.role
	if !seen {
		return nil
	}
	var out []*agentEntry
	for k, e := range r.m {
		if k.owner == c.owner && k.role != c.role {
			out = append(out, e)
			delete(r.m, k)
		}
	}
	return out
}

// current retires c's agents of another role, if its role changed (as
// every agent lookup does), and returns c: the handle RPCs call it so that
// a role change takes effect on an identity's next call of any kind.
func (r *agents) current(c caller) caller {
	r.mu.Lock()
	retired := r.retireLocked(c)
	r.mu.Unlock()
	r.destroyAll(retired)
	return c
}

// roleOf returns the role owner's latest call had (recorded by every
// agent lookup and handle call), ok false before its first.
func (r *agents) roleOf(owner string) (role string, ok bool) {
	r.mu.Lock()
	defer r.mu.Unlock()
	role, ok = r.roles[owner]
	return role, ok
}

// destroyAll destroys retired agents; never called with mu held (Destroy
// calls back into requests).
func (r *agents) destroyAll(es []*agentEntry) {
	for _, e := range es {
		e.agent.Destroy()
	}
}

// validAgentName reports whether name is 1-128 characters of [A-Za-z0-9._-].
func validAgentName(name string) bool {
	if len(name) == 0 || len(name) > 128 {
		return false
	}
	for i := 0; i < len(name); i++ {
		c := name[i]
		if !('a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' || c == '.' || c == '_' || c == '-') {
			return false
		}
	}
	return true
}

// create registers a new agent of c. propagate is its
// propagate_trace_context.
func (r *agents) create(name string, c caller, o agentpool.Options, propagate bool) (*agentEntry, error) {
	if !validAgentName(name) {
		return nil, badArgument("agent name must be 1-128 characters of [A-Za-z0-9._-], got " + strconv.Quote(name))
	}
	if name == globalAgent {
		// Every caller has a `global`, created or not yet.
		return nil, gwError(codeAgentExists, "an agent named "+strconv.Quote(name)+" exists")
	}
	a, err := agentpool.New(name, o, r.depsFor(c.role))
	if err != nil {
		return nil, err
	}
	key := agentKey{c.owner, c.role, name}
	r.mu.Lock()
	retired := r.retireLocked(c)
	_, exists := r.m[key]
	if !r.closed && !exists {
		r.m[key] = &agentEntry{agent: a, created: time.Now(), propagate: propagate, owner: c.owner, role: c.role}
	}
	e, closed := r.m[key], r.closed
	r.mu.Unlock()
	r.destroyAll(retired)
	switch {
	case closed:
		a.Destroy()
		return nil, gwError(codeShuttingDown, "the gateway is shutting down")
	case exists:
		a.Destroy()
		return nil, gwError(codeAgentExists, "an agent named "+strconv.Quote(name)+" exists")
	}
	if r.created != nil {
		r.created(a)
	}
	return e, nil
}

// oneTime returns a fresh unregistered agent for one request of c.
func (r *agents) oneTime(o agentpool.Options, c caller) (*agentpool.Agent, error) {
	return agentpool.New("", o, r.depsFor(c.role))
}

// destroy destroys and unregisters c's agent; `global` is refused.
func (r *agents) destroy(name string, c caller) error {
	if name == globalAgent || name == "" {
		return gwError(codeGlobalAgent, "the global agent cannot be destroyed")
	}
	key := agentKey{c.owner, c.role, name}
	r.mu.Lock()
	retired := r.retireLocked(c)
	e, ok := r.m[key]
	delete(r.m, key)
	r.mu.Unlock()
	r.destroyAll(retired)
	if !ok {
		return gwError(codeAgentNotFound, "no agent named "+strconv.Quote(name))
	}
	e.agent.Destroy() // not under mu: Destroy calls back into requests
	return nil
}

// list returns every agent of every caller, sorted by name (for metrics).
func (r *agents) list() []*agentEntry {
	r.mu.Lock()
	out := make([]*agentEntry, 0, len(r.m))
	for _, e := range r.m {
		out = append(out, e)
	}
	r.mu.Unlock()
	sortEntries(out)
	return out
}

// listFor returns c's agents, its `global` included (created if it was
// not yet), sorted by name.
func (r *agents) listFor(c caller) ([]*agentEntry, error) {
	if _, err := r.get(globalAgent, c); err != nil {
		return nil, err
	}
	r.mu.Lock()
	var out []*agentEntry
	for k, e := range r.m {
		if k.owner == c.owner && k.role == c.role {
			out = append(out, e)
		}
	}
	r.mu.Unlock()
	sortEntries(out)
	return out, nil
}

func sortEntries(es []*agentEntry) {
	sort.Slice(es, func(i, j int) bool {
		if a, b := es[i].agent.Name(), es[j].agent.Name(); a != b {
			return a < b
		}
		return es[i].owner < es[j].owner
	})
}

// close destroys every agent, every `global` included; later creates fail.
func (r *agents) close() {
	r.mu.Lock()
	r.closed = true
	all := r.m
	r.m = map[agentKey]*agentEntry{}
	r.mu.Unlock()
	for _, e := range all {
		e.agent.Destroy()
	}
}
