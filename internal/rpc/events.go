package rpc

import (
	"errors"
	"io"

	"google.golang.org/grpc"

	pb "github.com/httpgateway/httpgateway/gen/httpgateway/v1"
	"github.com/httpgateway/httpgateway/internal/httpengine"
)

// Events streams a request's events from from_seq on. Events emitted
// before anyone subscribed are kept by the engine's event log, which pauses
// the socket's reads while its undelivered data is over the bound. The
// stream ends with OK after the last event ('close' of the request and of
// its response); a sequence number already dropped is OUT_OF_RANGE.
//
// Cancelling the stream before the request closed acts as an AbortSignal:
// the request fails with ABORT_ERR and closes (DESIGN.md "Event order").
func (c *clientRequestService) Events(in *pb.EventsRequest, stream grpc.ServerStreamingServer[pb.EventsResponse]) error {
	h, err := c.handle(in.GetRequestId())
	if err != nil {
		return err
	}
	h.attach()
	defer h.detach()
	ctx := stream.Context()
	log := h.req.Events()
	for seq := max(in.GetFromSeq(), 1); ; seq++ {
		ev, err := log.NextHeld(ctx, seq)
		switch {
		case err == nil:
		case errors.Is(err, io.EOF):
			c.svc.handles.noteFinished(h, false)
			return h.streamEnd()
		case errors.Is(err, httpengine.ErrEventGone):
			return toStatus(gwError(codeEventGone, "event "+uitoa(seq)+" is no longer retained"))
		default: // the caller cancelled the stream, or its deadline passed
			h.req.Cancel(err)
			return toStatus(err)
		}
		if err := c.svc.admitEvent(h, &ev); err != nil {
			log.Done(&ev)
			// Past the response body bound: the request was destroyed and
			// nothing more of it is for delivery.
			c.svc.handles.noteFinished(h, true)
			return toStatus(err)
		}
		err = stream.Send(&pb.EventsResponse{Event: eventToProto(&ev, h.join, h.agentName)})
		log.Done(&ev) // Send marshalled the event: its data buffer may be reused
		if err != nil {
			h.req.Cancel(err)
			return err
		}
		h.touch()
	}
}
