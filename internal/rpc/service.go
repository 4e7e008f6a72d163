package rpc

import (
	"context"
	"time"

	"google.golang.org/grpc"

	pb "github.com/httpgateway/httpgateway/gen/httpgateway/v1"
	"github.com/httpgateway/httpgateway/internal/agentpool"
	"github.com/httpgateway/httpgateway/internal/httpengine"
	"github.com/httpgateway/httpgateway/internal/limits"
)

// Options configure the services. Zero values take the defaults noted.
type Options struct {
	// RequestIdleTimeout destroys a request handle that no stream is
	// attached to and no RPC touched for this long. Default 5m.
	RequestIdleTimeout time.Duration
	// FinishedLinger is how long a finished request handle (closed, events
	// delivered) stays, so that Get and late calls
	// right after 'close' still answer. At the live-request cap finished
	// handles are freed at once. Default 5s.
	FinishedLinger time.Duration
	// MaxLiveRequests bounds the requests alive at once: handles plus Fetch
	// calls in flight. Default 10000.
	MaxLiveRequests int
	// MaxFetchResponseBytes is the largest response body Fetch returns; a
	// caller's max_response_bytes may only lower it. Keep it under the gRPC
	// MaxSendMsgSize, with room for the head. Default 8 MiB.
	MaxFetchResponseBytes int64
	// EventBufferBytes bounds the undelivered body bytes a request keeps
	// before reading from its socket pauses, when the request does not ask
	// for its own bound. Default: the engine's (1 MiB).
	EventBufferBytes int
	// AgentDeps is the dial machinery (resolver, egress check) given to
	// every agent the service creates, `global` and one-time agents
	// included, when AgentDepsFor is nil. The zero value dials anything
	// with the system resolver.
	AgentDeps agentpool.Deps
	// AgentDepsFor, if set, returns the dial machinery for the agents of
	// callers in a role (auth.Identity.Role; "" is the default role and
	// the anonymous identity's): how a role's egress policy applies. Each
	// agent is created for one identity in one role and keeps that role's
	// Deps; see agents. It is called when an agent is created, not per
	// dial. nil means AgentDeps for every role.
	AgentDepsFor func(role string) agentpool.Deps
	// GlobalProxyEnv, when not empty, is the `global` agent's proxyEnv (a
	// gateway-wide default proxy, from the process environment).
	GlobalProxyEnv map[string]string
	// NewObserver, if set, is called once for every request the service
	// starts (Request, Exchange, Fetch), on the RPC's goroutine with the
	// RPC's context, before the engine request exists; it returns the
	// request's httpengine.Observer (nil for none). The observer sees the
	// request's 'close' in every case: a request the engine then refuses
	// to create (invalid options) is shown 'error' and 'close'
	// (observeRefused). It is how tracing, metrics and request logs hook
	// in without this package knowing of them; see RequestInfo for what it
	// may change.
	NewObserver func(ctx context.Context, r *RequestInfo) httpengine.Observer
	// AgentCreated, if set, is called with every named agent the service
	// creates, after it is registered and without locks held: each
	// identity's `global` (the anonymous identity's in New, the others'
	// on their first use) included. One-time agents are not reported:
	// they live for one request. Metrics use it to watch the pools.
	AgentCreated func(*agentpool.Agent)
	// Limits are the per-identity bounds; nil limits nothing. Every
	// request start takes from it (startRequest): concurrent requests,
	// handles and rate, refused with RESOURCE_EXHAUSTED and RetryInfo. Its
	// per-request bounds (header, request and response body, Tunnel
	// duration and bytes) are applied where those bytes flow (limits.go);
	// past one the request ends, RESOURCE_EXHAUSTED without RetryInfo.
	Limits *limits.Limiter
	// MaxRequestDuration caps every request's engine MaxDuration (whole
	// request, creation to 'close'). Default 0 = no cap.
	MaxRequestDuration time.Duration
}

// Defaults of Options.
const (
	DefaultRequestIdleTimeout    = 5 * time.Minute
	DefaultMaxLiveRequests       = 10000
	DefaultFinishedLinger        = 5 * time.Second
	DefaultMaxFetchResponseBytes = 8 << 20
)

func (o Options) withDefaults() Options {
	if o.RequestIdleTimeout <= 0 {
		o.RequestIdleTimeout = DefaultRequestIdleTimeout
	}
	if o.FinishedLinger <= 0 {
		o.FinishedLinger = DefaultFinishedLinger
	}
	if o.MaxLiveRequests <= 0 {
		o.MaxLiveRequests = DefaultMaxLiveRequests
	}
	if o.MaxFetchResponseBytes <= 0 {
		o.MaxFetchResponseBytes = DefaultMaxFetchResponseBytes
	}
	if o.EventBufferBytes <= 0 {
		o.EventBufferBytes = httpengine.DefaultEventBufferBytes
	}
	return o
}

// depsFor is AgentDepsFor, or AgentDeps for every role.
func (o Options) depsFor() func(role string) agentpool.Deps {
	if o.AgentDepsFor != nil {
		return o.AgentDepsFor
	}
	deps := o.AgentDeps
	return func(string) agentpool.Deps { return deps }
}

// Service holds the state behind the gateway's gRPC services: the agents
// and the live request handles. Create it with New, register it with
// Register, and Close it after the gRPC server stopped.
type Service struct {
	opts Options
	// bounds are Options.Limits' per-request bounds, read once: the
	// streaming paths consult them per chunk.
	bounds  limits.Options
	agents  *agents
	handles *handles
}

// New creates the service, its `global` agent, and starts the idle
// reaper, which runs until Close.
func New(o Options) *Service {
	o = o.withDefaults()
	return &Service{
		opts:    o,
		bounds:  o.Limits.Bounds(),
		agents:  newAgents(o.depsFor(), o.GlobalProxyEnv, o.AgentCreated),
		handles: newHandles(o.MaxLiveRequests, o.RequestIdleTimeout, o.FinishedLinger),
	}
}

// Register registers ClientRequestService and AgentService on s.
func (s *Service) Register(r grpc.ServiceRegistrar) {
	// As pb.RegisterClientRequestServiceServer, with Fetch bodies lent
	// (fetchbody.go).
	r.RegisterService(clientRequestServiceDesc(), ownedService{&clientRequestService{svc: s}})
	pb.RegisterAgentServiceServer(r, &agentService{svc: s})
}

// Close stops the reaper, destroys every live request and every agent.
// Call it once the gRPC server has stopped (RPCs still running see their
// requests destroyed). It is safe to call more than once.
func (s *Service) Close() {
	s.handles.close()
	s.agents.close()
}

// Agents returns the named agents alive now, of every caller, each
// identity's `global` included, sorted by name; one-time agents are not
// listed. For metrics that read their snapshots.
func (s *Service) Agents() []*agentpool.Agent {
	all := s.agents.list()
	out := make([]*agentpool.Agent, len(all))
	for i, e := range all {
		out[i] = e.agent
	}
	return out
}

// LiveRequests returns the number of request handles alive, for tests
// and metrics.
func (s *Service) LiveRequests() int { return s.handles.count() }

// clientRequestService implements pb.ClientRequestServiceServer.
type clientRequestService struct {
	pb.UnimplementedClientRequestServiceServer
	svc *Service
}

// agentService implements pb.AgentServiceServer.
type agentService struct {
	pb.UnimplementedAgentServiceServer
	svc *Service
}
