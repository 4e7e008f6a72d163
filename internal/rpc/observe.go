package rpc

import (
	"time"

	pb "github.com/httpgateway/httpgateway/gen/httpgateway/v1"
	"github.com/httpgateway/httpgateway/internal/httpengine"
)

// RequestInfo is what Options.NewObserver learns of a request about to
// start.
type RequestInfo struct {
	// Options are the engine options the request will be created with.
	// The hook may append header lines to Options.Headers (W3C trace
	// context) when Propagate is true, and must change nothing else; it
	// must not keep the pointer.
	Options *httpengine.Options
	// Agent is the agent's name ("global" by default), "" for a one-time
	// agent.
	Agent string
	// Propagate is whether trace context may be injected: the request's
	// propagate_trace_context when set, else its agent's (default true).
	// Some upstreams reject unknown headers.
	Propagate bool
}

// agentPropagate is an agent's propagate_trace_context (default true).
func agentPropagate(o *pb.AgentOptions) bool {
	if o == nil {
		return true
	}
	return propagateDefault(o.PropagateTraceContext, true)
}

// propagateDefault resolves an optional propagate_trace_context.
func propagateDefault(v *bool, def bool) bool {
	if v == nil {
		return def
	}
	return *v
}

// observeRefused ends the observation of a request the engine refused to
// create: httpengine.Request failed its validation (a bad URL, protocol,
// host or header), err. The observer was made before that, since
// NewObserver must see the options first to add its trace context, and it
// holds what it began then (tracing's span, metrics' count of active
// requests) until it sees the request's 'close'. So it is shown what the
// engine emits for a request that fails at once: 'error' with err as a
// Node error (the one the caller's status is made from), then the
// request's 'close'. o may be nil.
func observeRefused(o httpengine.Observer, err error) {
	if o == nil {
		return
	}
	now := time.Now()
	o.OnEvent(httpengine.Event{Seq: 1, Kind: httpengine.EventError, Target: httpengine.TargetRequest, Time: now, Err: nodeErrorOf(err)})
	o.OnEvent(httpengine.Event{Seq: 2, Kind: httpengine.EventClose, Target: httpengine.TargetRequest, Time: now})
}
