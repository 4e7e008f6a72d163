package rpc

import (
	"context"

	pb "github.com/httpgateway/httpgateway/gen/httpgateway/v1"
	"github.com/httpgateway/httpgateway/internal/agentpool"
	"github.com/httpgateway/httpgateway/internal/httpengine"
	"github.com/httpgateway/httpgateway/internal/nodeerr"
)

// maxEventBufferBytes caps a request's own event_buffer_bytes, so one
// caller cannot make the gateway hold an unbounded body.
const maxEventBufferBytes = 16 << 20

// requestSpec is what creating a request needs: the engine's options, the
// agent (a name, or options for a one-time agent) and the event bound.
type requestSpec struct {
	opts    httpengine.Options
	agent   string           // "" means `global`
	oneTime *pb.AgentOptions // non-nil: Node's `agent: false`
	buffer  int              // the request's event_buffer_bytes; 0 means the server's
	// propagate is the request's propagate_trace_context; nil follows the agent.
	propagate *bool
	// forHandle is set by newHandle: the request gets a handle, so it takes
	// a handle slot of its owner's limits, and startRequest leaves the
	// slots' release in release for the handle. Otherwise (Fetch) the
	// slots are given back when the RPC's context ends.
	forHandle bool
	release   func()
	// headers counts the caller's header bytes when the header bound is on
	// (set by startRequest, kept by the handle for header edits).
	headers *headerMeter
}

// specFromProto converts RequestOptions.
func specFromProto(o *pb.RequestOptions) (requestSpec, error) {
	eo, err := engineOptions(o)
	if err != nil {
		return requestSpec{}, err
	}
	sp := requestSpec{opts: eo, agent: o.GetAgent(), oneTime: o.GetOneTimeAgent(), buffer: int(o.GetEventBufferBytes())}
	if o != nil {
		sp.propagate = o.PropagateTraceContext
	}
	return sp, nil
}

// agentFor picks the agent of a request of c: a fresh one-time agent
// (Node's `agent: false`), or c's agent of that name, both dialing under
// c's role. name is "" for a one-time agent; propagate is the agent's
// propagate_trace_context.
func (s *Service) agentFor(sp *requestSpec, c caller) (a *agentpool.Agent, name string, oneTime, propagate bool, err error) {
	if sp.oneTime != nil {
		ao, err := agentOptions(sp.oneTime)
		if err == nil {
			err = s.checkProxyCredentials(ao)
		}
		if err != nil {
			return nil, "", false, false, err
		}
		a, err := s.agents.oneTime(ao, c)
		return a, "", true, agentPropagate(sp.oneTime), err
	}
	e, err := s.agents.get(sp.agent, c)
	if err != nil {
		return nil, "", false, false, err
	}
	return e.agent, e.agent.Name(), false, e.propagate, nil
}

// startRequest creates an engine request: the socket is requested from the
// agent at once. The caller holds a live-request slot (handles.reserve)
// and gives it back if this fails. ctx is the RPC's: the observer's
// parent (Options.NewObserver).
//
// It is also where the caller's identity applies (so every path that starts
// a request, Fetch included, goes through it): the caller's headers are
// judged against the header bound, the agent is looked up among the
// caller's (in its role), and the per-identity limits are taken here.
func (s *Service) startRequest(ctx context.Context, sp *requestSpec) (cr *httpengine.ClientRequest, agentName string, err error) {
	if s.bounds.MaxHeaderBytes > 0 {
		sp.headers = newHeaderMeter(&sp.opts) // before NewObserver adds its own
		if err := s.opts.Limits.CheckHeaders(sp.headers.total); err != nil {
			return nil, "", err
		}
	}
	who := callerOf(ctx)
	agent, name, oneTime, propagate, err := s.agentFor(sp, who)
	if err != nil {
		return nil, "", err
	}
	release, err := s.opts.Limits.Acquire(who.owner, sp.forHandle)
	if err != nil {
		if oneTime {
			agent.Destroy()
		}
		return nil, "", err
	}
	defer func() {
		switch {
		case err != nil:
			release()
		case sp.forHandle:
			sp.release = release
		default:
			// Fetch: the request lives as long as its RPC. gRPC ends the
			// context when the handler returns.
			context.AfterFunc(ctx, release)
		}
	}()
	if d := s.opts.MaxRequestDuration; d > 0 && (sp.opts.MaxDuration == 0 || sp.opts.MaxDuration > d) {
		sp.opts.MaxDuration = d
	}
	if s.opts.NewObserver != nil {
		sp.opts.Observer = s.opts.NewObserver(ctx, &RequestInfo{
			Options:   &sp.opts,
			Agent:     name,
			Propagate: propagateDefault(sp.propagate, propagate),
		})
	}
	buf := s.opts.EventBufferBytes
	if sp.buffer > 0 {
		buf = min(sp.buffer, maxEventBufferBytes)
	}
	if b := s.bounds.MaxResponseBodyBytes; b > 0 && int64(buf) > b {
		// Reading pauses once the undelivered body reaches the bound: the
		// gateway reads little more than a caller may be given.
		buf = int(b)
	}
	cr, err = httpengine.Request(agent, oneTime, sp.opts, buf)
	if err != nil {
		observeRefused(sp.opts.Observer, err) // it ends what NewObserver began
		if oneTime {
			agent.Destroy() // the request that would have owned it never started
		}
		return nil, "", err
	}
	return cr, name, nil
}

// newHandle creates a request and registers its handle.
func (s *Service) newHandle(ctx context.Context, o *pb.RequestOptions) (*handle, error) {
	sp, err := specFromProto(o)
	if err != nil {
		return nil, err
	}
	sp.forHandle = true
	// The handle's readers (Events, Exchange) read with NextHeld and give
	// each event back once sent, so the read buffers are reused.
	sp.opts.ReuseBodyBuffers = true
	if err := s.handles.reserve(); err != nil {
		return nil, err
	}
	cr, name, err := s.startRequest(ctx, &sp)
	if err != nil {
		s.handles.unreserve()
		return nil, err
	}
	h, err := s.handles.add(cr, name, sp.opts.JoinDuplicateHeaders, callerOf(ctx), sp.release)
	if err != nil {
		return nil, err
	}
	h.headerMu.Lock() // nobody knows the id yet; the lock is for the record
	h.headers = sp.headers
	h.headerMu.Unlock()
	return h, nil
}

// Request creates a ClientRequest; its socket is requested at once.
func (c *clientRequestService) Request(ctx context.Context, in *pb.RequestRequest) (*pb.RequestResponse, error) {
	h, err := c.svc.newHandle(ctx, in.GetOptions())
	if err != nil {
		return nil, toStatus(err)
	}
	return &pb.RequestResponse{Request: requestToProto(h)}, nil
}

// owner is the identity name that owns what the call in ctx creates and
// may touch ("" when anonymous or without authentication).

// handleFor looks up a live request of the caller for an RPC that drives it
// (activity). Another caller's request is NOT_FOUND, as an unknown id.
func (c *clientRequestService) handleFor(ctx context.Context, id string) (*handle, error) {
	h, err := c.svc.handles.getOwned(id, c.svc.agents.current(callerOf(ctx)))
	if err != nil {
		return nil, toStatus(err)
	}
	return h, nil
}

// peekFor is handleFor for an RPC that only reads a request's state: no
// activity is recorded (see handles.lookup).
func (c *clientRequestService) peekFor(ctx context.Context, id string) (*handle, error) {
	h, err := c.svc.handles.lookupOwned(id, c.svc.agents.current(callerOf(ctx)))
	if err != nil {
		return nil, toStatus(err)
	}
	return h, nil
}

// handle looks up a live request for an RPC that drives it (activity).
// It does not check the owner: Events and Write use it behind ownedService,
// which checked the owner before.
func (c *clientRequestService) handle(id string) (*handle, error) {
	h, err := c.svc.handles.get(id)
	if err != nil {
		return nil, toStatus(err)
	}
	return h, nil
}

// SetHeader is request.setHeader.
func (c *clientRequestService) SetHeader(ctx context.Context, in *pb.SetHeaderRequest) (*pb.SetHeaderResponse, error) {
	h, err := c.handleFor(ctx, in.GetRequestId())
	if err != nil {
		return nil, err
	}
	if err := c.svc.setHeader(h, in.GetName(), in.GetValues()); err != nil {
		return nil, toStatus(err)
	}
	return &pb.SetHeaderResponse{}, nil
}

// AppendHeader is request.appendHeader.
func (c *clientRequestService) AppendHeader(ctx context.Context, in *pb.AppendHeaderRequest) (*pb.AppendHeaderResponse, error) {
	h, err := c.handleFor(ctx, in.GetRequestId())
	if err != nil {
		return nil, err
	}
	if err := c.svc.appendHeader(h, in.GetName(), in.GetValues()); err != nil {
		return nil, toStatus(err)
	}
	return &pb.AppendHeaderResponse{}, nil
}

// GetHeader is request.getHeader.
func (c *clientRequestService) GetHeader(ctx context.Context, in *pb.GetHeaderRequest) (*pb.GetHeaderResponse, error) {
	h, err := c.peekFor(ctx, in.GetRequestId())
	if err != nil {
		return nil, err
	}
	values, raw, ok := h.req.GetHeader(in.GetName())
	return &pb.GetHeaderResponse{Present: ok, Values: values, RawName: raw}, nil
}

// RemoveHeader is request.removeHeader.
func (c *clientRequestService) RemoveHeader(ctx context.Context, in *pb.RemoveHeaderRequest) (*pb.RemoveHeaderResponse, error) {
	h, err := c.handleFor(ctx, in.GetRequestId())
	if err != nil {
		return nil, err
	}
	if err := c.svc.removeHeader(h, in.GetName()); err != nil {
		return nil, toStatus(err)
	}
	return &pb.RemoveHeaderResponse{}, nil
}

// HasHeader is request.hasHeader.
func (c *clientRequestService) HasHeader(ctx context.Context, in *pb.HasHeaderRequest) (*pb.HasHeaderResponse, error) {
	h, err := c.peekFor(ctx, in.GetRequestId())
	if err != nil {
		return nil, err
	}
	return &pb.HasHeaderResponse{Present: h.req.HasHeader(in.GetName())}, nil
}

// GetHeaders is request.getHeaders.
func (c *clientRequestService) GetHeaders(ctx context.Context, in *pb.GetHeadersRequest) (*pb.GetHeadersResponse, error) {
	h, err := c.peekFor(ctx, in.GetRequestId())
	if err != nil {
		return nil, err
	}
	return &pb.GetHeadersResponse{Headers: headerValuesToProto(h.req.GetHeaders())}, nil
}

// GetHeaderNames is request.getHeaderNames.
func (c *clientRequestService) GetHeaderNames(ctx context.Context, in *pb.GetHeaderNamesRequest) (*pb.GetHeaderNamesResponse, error) {
	h, err := c.peekFor(ctx, in.GetRequestId())
	if err != nil {
		return nil, err
	}
	return &pb.GetHeaderNamesResponse{Names: h.req.GetHeaderNames()}, nil
}

// GetRawHeaderNames is request.getRawHeaderNames.
func (c *clientRequestService) GetRawHeaderNames(ctx context.Context, in *pb.GetRawHeaderNamesRequest) (*pb.GetRawHeaderNamesResponse, error) {
	h, err := c.peekFor(ctx, in.GetRequestId())
	if err != nil {
		return nil, err
	}
	return &pb.GetRawHeaderNamesResponse{Names: h.req.GetRawHeaderNames()}, nil
}

// FlushHeaders is request.flushHeaders.
func (c *clientRequestService) FlushHeaders(ctx context.Context, in *pb.FlushHeadersRequest) (*pb.FlushHeadersResponse, error) {
	h, err := c.handleFor(ctx, in.GetRequestId())
	if err != nil {
		return nil, err
	}
	if err := h.req.FlushHeaders(); err != nil {
		return nil, toStatus(err)
	}
	return &pb.FlushHeadersResponse{}, nil
}

// SetTimeout is request.setTimeout.
func (c *clientRequestService) SetTimeout(ctx context.Context, in *pb.SetTimeoutRequest) (*pb.SetTimeoutResponse, error) {
	h, err := c.handleFor(ctx, in.GetRequestId())
	if err != nil {
		return nil, err
	}
	d := durationOrZero(in.GetTimeout())
	if d < 0 {
		return nil, toStatus(nodeerr.New(nodeerr.ERR_OUT_OF_RANGE, `The value of "timeout" is out of range. It must be >= 0.`))
	}
	h.req.SetTimeout(d)
	return &pb.SetTimeoutResponse{}, nil
}

// SetNoDelay is request.setNoDelay; no_delay defaults to true as in Node.
func (c *clientRequestService) SetNoDelay(ctx context.Context, in *pb.SetNoDelayRequest) (*pb.SetNoDelayResponse, error) {
	h, err := c.handleFor(ctx, in.GetRequestId())
	if err != nil {
		return nil, err
	}
	noDelay := in.NoDelay == nil || in.GetNoDelay()
	h.req.SetNoDelay(noDelay)
	return &pb.SetNoDelayResponse{}, nil
}

// SetSocketKeepAlive is request.setSocketKeepAlive.
func (c *clientRequestService) SetSocketKeepAlive(ctx context.Context, in *pb.SetSocketKeepAliveRequest) (*pb.SetSocketKeepAliveResponse, error) {
	h, err := c.handleFor(ctx, in.GetRequestId())
	if err != nil {
		return nil, err
	}
	d := durationOrZero(in.GetInitialDelay())
	if d < 0 {
		return nil, toStatus(nodeerr.New(nodeerr.ERR_OUT_OF_RANGE, `The value of "initialDelay" is out of range. It must be >= 0.`))
	}
	h.req.SetSocketKeepAlive(in.GetEnable(), d)
	return &pb.SetSocketKeepAliveResponse{}, nil
}

// FollowRedirect is Electron's request.followRedirect(), for a request in
// deferred redirect mode that emitted 'redirect'.
func (c *clientRequestService) FollowRedirect(ctx context.Context, in *pb.FollowRedirectRequest) (*pb.FollowRedirectResponse, error) {
	h, err := c.handleFor(ctx, in.GetRequestId())
	if err != nil {
		return nil, err
	}
	if err := h.req.FollowRedirect(); err != nil {
		return nil, toStatus(err)
	}
	return &pb.FollowRedirectResponse{}, nil
}

// Login answers a 'login' event with credentials (Electron's callback);
// empty credentials cancel the request. Credentials whose header line
// would pass the header bound are refused and the 'login' still waits
// (admitLogin).
func (c *clientRequestService) Login(ctx context.Context, in *pb.LoginRequest) (*pb.LoginResponse, error) {
	h, err := c.handleFor(ctx, in.GetRequestId())
	if err != nil {
		return nil, err
	}
	if err := c.svc.admitLogin(h, in.GetUsername(), in.GetPassword()); err != nil {
		return nil, toStatus(err)
	}
	if err := h.req.Login(in.GetUsername(), in.GetPassword()); err != nil {
		return nil, toStatus(err)
	}
	return &pb.LoginResponse{}, nil
}

// GetUploadProgress is Electron's request.getUploadProgress.
func (c *clientRequestService) GetUploadProgress(ctx context.Context, in *pb.GetUploadProgressRequest) (*pb.GetUploadProgressResponse, error) {
	h, err := c.peekFor(ctx, in.GetRequestId())
	if err != nil {
		return nil, err
	}
	return &pb.GetUploadProgressResponse{Progress: uploadToProto(h.req.UploadProgress())}, nil
}

// End is request.end(data); it returns once everything was handed to the
// operating system ('finish').
func (c *clientRequestService) End(ctx context.Context, in *pb.EndRequest) (*pb.EndResponse, error) {
	h, err := c.handleFor(ctx, in.GetRequestId())
	if err != nil {
		return nil, err
	}
	h.attach()
	defer h.detach()
	if err := c.svc.admitBody(h, len(in.GetData())); err != nil {
		return nil, toStatus(h.endOverLimit(err))
	}
	if err := h.req.End(ctx, in.GetData()); err != nil {
		return nil, toStatus(err)
	}
	return &pb.EndResponse{}, nil
}

// Destroy is request.destroy([error]).
func (c *clientRequestService) Destroy(ctx context.Context, in *pb.DestroyRequest) (*pb.DestroyResponse, error) {
	h, err := c.handleFor(ctx, in.GetRequestId())
	if err != nil {
		return nil, err
	}
	h.req.Destroy(nodeErrorFromProto(in.GetError()))
	return &pb.DestroyResponse{}, nil
}

// Abort is request.abort().
func (c *clientRequestService) Abort(ctx context.Context, in *pb.AbortRequest) (*pb.AbortResponse, error) {
	h, err := c.handleFor(ctx, in.GetRequestId())
	if err != nil {
		return nil, err
	}
	h.req.Abort()
	return &pb.AbortResponse{}, nil
}

// Get returns the request's properties.
func (c *clientRequestService) Get(ctx context.Context, in *pb.GetRequest) (*pb.GetResponse, error) {
	h, err := c.peekFor(ctx, in.GetRequestId())
	if err != nil {
		return nil, err
	}
	return &pb.GetResponse{Request: requestToProto(h)}, nil
}
