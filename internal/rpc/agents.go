package rpc

import (
	"sort"
	"strconv"
	"sync"
	"time"

	"github.com/httpgateway/httpgateway/internal/agentpool"
)

// globalAgent is the name of the agent that always exists.
const globalAgent = "global"

// agentEntry is one named agent.
type agentEntry struct {
	agent   *agentpool.Agent
	created time.Time
	// owner is the identity that created the agent; `global` is
	// everyone's ("" with shared set).
	owner  string
	shared bool
	// propagate is AgentOptions.propagate_trace_context (default true):
	// requests through the agent get W3C trace context headers unless
	// they say otherwise. The pool knows nothing of tracing, so it is kept
	// here.
	propagate bool
}

// agents is the registry of named agents. `global` is created with the
// registry and lives until close; it is shared by every caller (it cannot be
// destroyed, so sharing it gives nobody power over another). Every other
// agent belongs to the identity that created it: it is registered under
// (owner, name), so two callers may each have an agent "pool", and another
// caller's agent answers NOT_FOUND exactly as a name nobody uses. One-time agents (Node's `agent: false`)
// are not registered: the request that owns one destroys it.
type agents struct {
	deps agentpool.Deps
	// created, if set, sees every named agent once, `global` included
	// (Options.AgentCreated). Called without mu held.
	created func(*agentpool.Agent)

	mu     sync.Mutex // guards the fields below
	m      map[agentKey]*agentEntry
	closed bool
}

// agentKey names an agent in the registry: its owner and its name.
// `global` is under the empty owner.
type agentKey struct{ owner, name string }

func newAgents(deps agentpool.Deps, proxyEnv map[string]string, created func(*agentpool.Agent)) *agents {
	opts := agentpool.GlobalOptions()
	opts.ProxyEnv = proxyEnv
	g, err := agentpool.New(globalAgent, opts, deps)
	if err != nil {
		panic("rpc: the global agent's options are invalid: " + err.Error())
	}
	if created != nil {
		created(g)
	}
	return &agents{deps: deps, created: created,
		m: map[agentKey]*agentEntry{{name: globalAgent}: {agent: g, created: time.Now(), propagate: true, shared: true}}}
}

// get returns owner's agent named name, or `global` ("" means `global`).
func (r *agents) get(name, owner string) (*agentEntry, error) {
	if name == "" || name == globalAgent {
		name, owner = globalAgent, ""
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	e, ok := r.m[agentKey{owner, name}]
	if !ok {
		return nil, gwError(codeAgentNotFound, "no agent named "+strconv.Quote(name))
	}
	return e, nil
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

// create registers a new agent. propagate is its propagate_trace_context.
func (r *agents) create(name, owner string, o agentpool.Options, propagate bool) (*agentEntry, error) {
	if !validAgentName(name) {
		return nil, badArgument("agent name must be 1-128 characters of [A-Za-z0-9._-], got " + strconv.Quote(name))
	}
	a, err := agentpool.New(name, o, r.deps)
	if err != nil {
		return nil, err
	}
	r.mu.Lock()
	if r.closed {
		r.mu.Unlock()
		a.Destroy()
		return nil, gwError(codeShuttingDown, "the gateway is shutting down")
	}
	key := agentKey{owner, name}
	if name == globalAgent {
		key.owner = "" // the one `global`: creating it again is ALREADY_EXISTS for all
	}
	if _, ok := r.m[key]; ok {
		r.mu.Unlock()
		a.Destroy()
		return nil, gwError(codeAgentExists, "an agent named "+strconv.Quote(name)+" exists")
	}
	e := &agentEntry{agent: a, created: time.Now(), propagate: propagate, owner: owner}
	r.m[key] = e
	r.mu.Unlock()
	if r.created != nil {
		r.created(a)
	}
	return e, nil
}

// oneTime returns a fresh unregistered agent for one request.
func (r *agents) oneTime(o agentpool.Options) (*agentpool.Agent, error) {
	return agentpool.New("", o, r.deps)
}

// destroy destroys and unregisters an agent; `global` is refused.
func (r *agents) destroy(name, owner string) error {
	if name == globalAgent || name == "" {
		return gwError(codeGlobalAgent, "the global agent cannot be destroyed")
	}
	r.mu.Lock()
	e, ok := r.m[agentKey{owner, name}]
	delete(r.m, agentKey{owner, name})
	r.mu.Unlock()
	if !ok {
		return gwError(codeAgentNotFound, "no agent named "+strconv.Quote(name))
	}
	e.agent.Destroy() // not under mu: Destroy calls back into requests
	return nil
}

// list returns every agent, sorted by name (for metrics).
func (r *agents) list() []*agentEntry { return r.listFor("", true) }

// listFor returns owner's agents and `global`, sorted by name; all, every
// owner's.
func (r *agents) listFor(owner string, all bool) []*agentEntry {
	r.mu.Lock()
	out := make([]*agentEntry, 0, len(r.m))
	for _, e := range r.m {
		if all || e.shared || e.owner == owner {
			out = append(out, e)
		}
	}
	r.mu.Unlock()
	sort.Slice(out, func(i, j int) bool { return out[i].agent.Name() < out[j].agent.Name() })
	return out
}

// close destroys every agent, `global` included; later creates fail.
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
