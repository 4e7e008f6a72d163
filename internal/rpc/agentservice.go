package rpc

import (
	"context"
	"slices"

	"google.golang.org/grpc"
	"google.golang.org/protobuf/types/known/timestamppb"

	pb "github.com/httpgateway/httpgateway/gen/httpgateway/v1"
	"github.com/httpgateway/httpgateway/internal/agentpool"
)

// CreateAgent is `new http.Agent(options)` under a name.
func (a *agentService) CreateAgent(ctx context.Context, in *pb.CreateAgentRequest) (*pb.CreateAgentResponse, error) {
	o, err := agentOptions(in.GetOptions())
	if err == nil {
		err = a.svc.checkProxyCredentials(o)
	}
	if err != nil {
		return nil, toStatus(err)
	}
	e, err := a.svc.agents.create(in.GetName(), callerOf(ctx), o, agentPropagate(in.GetOptions()))
	if err != nil {
		return nil, toStatus(err)
	}
	return &pb.CreateAgentResponse{Agent: agentToProto(e)}, nil
}

// GetAgent returns one agent.
func (a *agentService) GetAgent(ctx context.Context, in *pb.GetAgentRequest) (*pb.GetAgentResponse, error) {
	e, err := a.svc.agents.get(in.GetName(), callerOf(ctx))
	if err != nil {
		return nil, toStatus(err)
	}
	return &pb.GetAgentResponse{Agent: agentToProto(e)}, nil
}

// ListAgents returns the caller's agents, its `global` included, sorted by
// name.
func (a *agentService) ListAgents(ctx context.Context, _ *pb.ListAgentsRequest) (*pb.ListAgentsResponse, error) {
	all, err := a.svc.agents.listFor(callerOf(ctx))
	if err != nil {
		return nil, toStatus(err)
	}
	out := &pb.ListAgentsResponse{Agents: make([]*pb.Agent, len(all))}
	for i, e := range all {
		out.Agents[i] = agentToProto(e)
	}
	return out, nil
}

// DestroyAgent is agent.destroy(); `global` is refused.
func (a *agentService) DestroyAgent(ctx context.Context, in *pb.DestroyAgentRequest) (*pb.DestroyAgentResponse, error) {
	if err := a.svc.agents.destroy(in.GetName(), callerOf(ctx)); err != nil {
		return nil, toStatus(err)
	}
	return &pb.DestroyAgentResponse{}, nil
}

// GetName is agent.getName(options). The port defaults to 80 or 443 as
// the API documents.
func (a *agentService) GetName(ctx context.Context, in *pb.GetNameRequest) (*pb.GetNameResponse, error) {
	e, err := a.svc.agents.get(in.GetAgent(), callerOf(ctx))
	if err != nil {
		return nil, toStatus(err)
	}
	o := in.GetOptions()
	t := agentpool.Target{
		Protocol:     o.GetProtocol(),
		Host:         o.GetHost(),
		Port:         int(o.GetPort()),
		LocalAddress: o.GetLocalAddress(),
		Family:       int(o.GetFamily()),
		SocketPath:   o.GetSocketPath(),
		TLS:          tlsFromProto(o.GetTls()),
	}
	if t.Protocol == "" {
		t.Protocol = "http:"
	}
	if t.Port == 0 {
		t.Port = 80
		if t.Protocol == "https:" {
			t.Port = 443
		}
	}
	return &pb.GetNameResponse{Name: e.agent.GetName(t)}, nil
}

// ListSockets shows agent.sockets, agent.freeSockets and agent.requests per
// name. Queued requests carry no request_id or time yet: the pool's
// snapshot only counts them.
func (a *agentService) ListSockets(ctx context.Context, in *pb.ListSocketsRequest) (*pb.ListSocketsResponse, error) {
	e, err := a.svc.agents.get(in.GetAgent(), callerOf(ctx))
	if err != nil {
		return nil, toStatus(err)
	}
	states := in.GetStates()
	keep := func(s *agentpool.SocketInfo) bool {
		return len(states) == 0 || slices.Contains(states, socketStateToProto(s.State))
	}
	out := &pb.ListSocketsResponse{}
	for _, n := range e.agent.Snapshot().Names {
		if in.GetName() != "" && n.Name != in.GetName() {
			continue
		}
		ns := &pb.NameSockets{Name: n.Name}
		for i := range n.Sockets {
			if keep(&n.Sockets[i]) {
				ns.Sockets = append(ns.Sockets, socketInfoToProto(&n.Sockets[i]))
			}
		}
		for i := range n.FreeSockets {
			if keep(&n.FreeSockets[i]) {
				ns.FreeSockets = append(ns.FreeSockets, socketInfoToProto(&n.FreeSockets[i]))
			}
		}
		for range n.Requests {
			ns.Requests = append(ns.Requests, &pb.QueuedRequest{})
		}
		out.Names = append(out.Names, ns)
	}
	return out, nil
}

var agentEventTypes = [...]pb.AgentEventType{
	agentpool.EventSocketCreated:   pb.AgentEventType_AGENT_EVENT_TYPE_SOCKET_CREATED,
	agentpool.EventSocketAssigned:  pb.AgentEventType_AGENT_EVENT_TYPE_SOCKET_ASSIGNED,
	agentpool.EventSocketReused:    pb.AgentEventType_AGENT_EVENT_TYPE_SOCKET_REUSED,
	agentpool.EventSocketFreed:     pb.AgentEventType_AGENT_EVENT_TYPE_SOCKET_FREED,
	agentpool.EventSocketTimedOut:  pb.AgentEventType_AGENT_EVENT_TYPE_SOCKET_TIMED_OUT,
	agentpool.EventSocketClosed:    pb.AgentEventType_AGENT_EVENT_TYPE_SOCKET_CLOSED,
	agentpool.EventSocketDetached:  pb.AgentEventType_AGENT_EVENT_TYPE_SOCKET_DETACHED,
	agentpool.EventRequestQueued:   pb.AgentEventType_AGENT_EVENT_TYPE_REQUEST_QUEUED,
	agentpool.EventRequestDequeued: pb.AgentEventType_AGENT_EVENT_TYPE_REQUEST_DEQUEUED,
}

// watchBuffer is the room of a WatchAgent subscription: a subscriber that
// falls further behind sees gaps in seq rather than stalling the pool.
const watchBuffer = 1024

// WatchAgent streams the agent's events until the caller cancels or the
// agent is destroyed (then the stream ends with OK after the events of the
// destruction). seq counts from 1 within the subscription; a gap means
// events were dropped because the subscriber was slow.
func (a *agentService) WatchAgent(in *pb.WatchAgentRequest, stream grpc.ServerStreamingServer[pb.WatchAgentResponse]) error {
	e, err := a.svc.agents.get(in.GetAgent(), callerOf(stream.Context()))
	if err != nil {
		return toStatus(err)
	}
	sub := e.agent.Subscribe(watchBuffer)
	defer sub.Close()
	// Response headers now say the subscription is live: a caller that
	// waits for them (Header() in Go) sees every event from here on.
	if err := stream.SendHeader(nil); err != nil {
		return toStatus(err)
	}
	// The pool numbers events per agent; the subscription's numbering
	// starts at its first event. Drops only happen while the buffer is
	// full, so never before the first event: gaps after it show them.
	var (
		base    uint64
		started bool
	)
	ctx := stream.Context()
	for {
		select {
		case <-ctx.Done():
			return toStatus(ctx.Err())
		case ev, ok := <-sub.C():
			if !ok {
				return nil
			}
			if !started {
				base, started = ev.Seq-1, true
			}
			out := &pb.AgentEvent{
				Seq:    ev.Seq - base,
				Time:   timestamppb.New(ev.Time),
				Name:   ev.Name,
				Reason: ev.Reason,
			}
			out.SocketId = ev.SocketID
			if int(ev.Type) < len(agentEventTypes) {
				out.Type = agentEventTypes[ev.Type]
			}
			if err := stream.Send(&pb.WatchAgentResponse{Event: out}); err != nil {
				return err
			}
		}
	}
}
