package rpc

import (
	"google.golang.org/grpc"

	pb "github.com/httpgateway/httpgateway/gen/httpgateway/v1"
)

// ownedService is the ClientRequestService as registered: it checks, for
// the streaming calls that name a request in their messages (Events,
// Write), that the request belongs to the caller before the handler looks
// it up; the other calls check it themselves (handleFor, peekFor, Tunnel).
// A request of another caller answers NOT_FOUND exactly as an unknown id.
// Request ids are 128 random bits and never reused, so the check and the
// handler's own lookup see the same request (or none).
type ownedService struct{ *clientRequestService }

// Events checks the owner, then streams as clientRequestService.Events.
func (o ownedService) Events(in *pb.EventsRequest, stream grpc.ServerStreamingServer[pb.EventsResponse]) error {
	if _, err := o.svc.handles.lookupOwned(in.GetRequestId(), o.svc.agents.current(callerOf(stream.Context()))); err != nil {
		return toStatus(err)
	}
	return o.clientRequestService.Events(in, stream)
}

// Write checks the owner of the request each message names, then writes as
// clientRequestService.Write.
func (o ownedService) Write(stream grpc.ClientStreamingServer[pb.WriteRequest, pb.WriteResponse]) error {
	return o.write(ownedWrite{stream, o.svc.handles, o.svc.agents.current(callerOf(stream.Context()))})
}

// ownedWrite fails recv with NOT_FOUND when a message names a request of
// another caller.
type ownedWrite struct {
	grpc.ClientStreamingServer[pb.WriteRequest, pb.WriteResponse]
	hs     *handles
	caller caller
}

func (w ownedWrite) recv(m *writeMessage) error {
	if err := w.RecvMsg(m); err != nil {
		return err
	}
	if id := m.GetRequestId(); id != "" {
		if _, err := w.hs.lookupOwned(id, w.caller); err != nil {
			m.lend()() // the chunk goes nowhere
			return toStatus(err)
		}
	}
	return nil
}
