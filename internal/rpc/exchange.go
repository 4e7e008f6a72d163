package rpc

import (
	"context"
	"errors"
	"io"
	"sync"

	"google.golang.org/grpc"

	pb "github.com/httpgateway/httpgateway/gen/httpgateway/v1"
)

// exchangeSender serialises the sends of an Exchange stream: the handler
// goroutine sends events, the op reader sends refusals, and gRPC forbids
// concurrent SendMsg. Once closed (the handler is about to return) nothing
// is sent anymore: the stream must not be used after its handler returned.
type exchangeSender struct {
	stream grpc.BidiStreamingServer[pb.ExchangeRequest, pb.ExchangeResponse]

	mu     sync.Mutex // guards closed and every stream.Send
	closed bool
}

func (x *exchangeSender) send(m *pb.ExchangeResponse) error {
	x.mu.Lock()
	defer x.mu.Unlock()
	if x.closed {
		return io.ErrClosedPipe
	}
	return x.stream.Send(m)
}

// close waits for a send in progress and refuses later ones.
func (x *exchangeSender) close() {
	x.mu.Lock()
	x.closed = true
	x.mu.Unlock()
}

// Exchange drives one request over one bidirectional stream. The first
// message must be `start`; the handler answers `created`, then every event
// in order; the stream ends with OK after the request's last event.
//
// Goroutines: the handler goroutine reads the event log and sends events.
// One op reader goroutine (readOps) receives the caller's messages and
// applies them in order; a write or end returns once the request holds no
// more than its high-water mark unwritten, so the reader receives the next
// message only then (gRPC flow control is the backpressure). A write's
// chunk is lent from gRPC's buffer, not copied (exchangeMessage). A refused op is an
// OpRefused message and the request goes on. The reader ends when Recv
// fails: the caller half-closed, or the stream's context ended (which gRPC
// does as soon as the handler returns), so it never outlives the RPC by
// more than one blocked engine call, which the same context unblocks.
//
// Ending the stream early acts like an AbortSignal (ABORT_ERR): a
// cancellation or deadline before the request closed, or a half-close
// before end() was called (the body could never be completed). A
// half-close after end() just means no more ops.
func (c *clientRequestService) Exchange(stream grpc.BidiStreamingServer[pb.ExchangeRequest, pb.ExchangeResponse]) error {
	ctx := stream.Context()
	first, err := stream.Recv()
	if errors.Is(err, io.EOF) {
		return toStatus(badArgument("Exchange: the stream ended before its start message"))
	}
	if err != nil {
		return err
	}
	start := first.GetStart()
	if start == nil {
		return toStatus(badArgument("Exchange: the first message must be start"))
	}
	h, err := c.svc.newHandle(ctx, start)
	if err != nil {
		return toStatus(err)
	}
	h.attach()
	defer func() {
		h.detach()
		// This stream was the request's consumer: once the request
		// closed, the handle is finished (unless a socket waits for Tunnel)
		// and lingers a while for Get; the events it delivered, body data
		// included, are not kept for that while (a later Events from one
		// of them is OUT_OF_RANGE, as for any event no longer retained).
		h.req.Events().DropDelivered()
		c.svc.handles.noteFinished(h, true)
	}()

	x := &exchangeSender{stream: stream}
	defer x.close()
	if err := x.send(&pb.ExchangeResponse{Kind: &pb.ExchangeResponse_Created{Created: requestToProto(h)}}); err != nil {
		h.req.Cancel(err)
		return err
	}
	go c.readOps(ctx, h, stream, x) // ends when stream.Recv fails; see above

	log := h.req.Events()
	for seq := uint64(1); ; seq++ {
		ev, err := log.NextHeld(ctx, seq)
		if errors.Is(err, io.EOF) {
			return h.streamEnd()
		}
		if err != nil { // cancelled, or the deadline bounding the request passed
			h.req.Cancel(err)
			return toStatus(err)
		}
		if err := c.svc.admitEvent(h, &ev); err != nil {
			log.Done(&ev)
			return toStatus(err) // past the response body bound
		}
		err = x.send(&pb.ExchangeResponse{Kind: &pb.ExchangeResponse_Event{Event: eventToProto(&ev, h.join, h.agentName)}})
		log.Done(&ev) // send marshalled the event: its data buffer may be reused
		if err != nil {
			h.req.Cancel(err)
			return err
		}
		h.touch()
	}
}

// readOps applies the caller's ops to the request until Recv fails.
func (c *clientRequestService) readOps(ctx context.Context, h *handle, stream grpc.BidiStreamingServer[pb.ExchangeRequest, pb.ExchangeResponse], x *exchangeSender) {
	for index := uint64(1); ; index++ {
		var msg exchangeMessage
		err := stream.RecvMsg(&msg)
		if err != nil {
			if errors.Is(err, io.EOF) {
				if p := h.req.Properties(); !p.WritableEnded && !p.Destroyed && !p.Closed {
					h.req.Cancel(errors.New("the Exchange stream was half-closed before end()"))
				}
			} else {
				h.req.Cancel(err)
			}
			return
		}
		h.touch()
		if err := c.svc.applyOp(ctx, h, &msg.ExchangeRequest, msg.lend()); err != nil {
			if ctx.Err() != nil {
				continue // the stream is ending; Recv fails next
			}
			refused := &pb.OpRefused{OpIndex: index, Error: nodeErrorToProto(nodeErrorOf(err))}
			_ = x.send(&pb.ExchangeResponse{Kind: &pb.ExchangeResponse_OpRefused{OpRefused: refused}})
			if endsRequest(err) {
				_ = h.endOverLimit(err) // after the refusal, so it comes first
			}
		}
	}
}

// applyOp applies one Exchange op; the error is what Node would throw, or
// the bound a header edit, a login's credentials or a chunk would pass
// (limits.go). release gives back a write op's lent chunk (see
// exchangeMessage); applyOp calls it, or has the request call it.
func (s *Service) applyOp(ctx context.Context, h *handle, msg *pb.ExchangeRequest, release func()) error {
	r := h.req
	if op, ok := msg.GetOp().(*pb.ExchangeRequest_Write); ok {
		if err := s.admitBody(h, len(op.Write)); err != nil {
			release()
			return err
		}
		return r.WriteBorrowed(ctx, op.Write, release)
	}
	release() // only a write op lends its chunk
	switch op := msg.GetOp().(type) {
	case *pb.ExchangeRequest_SetHeader:
		return s.setHeader(h, op.SetHeader.GetName(), op.SetHeader.GetValues())
	case *pb.ExchangeRequest_AppendHeader:
		return s.appendHeader(h, op.AppendHeader.GetName(), op.AppendHeader.GetValues())
	case *pb.ExchangeRequest_RemoveHeader:
		return s.removeHeader(h, op.RemoveHeader.GetName())
	case *pb.ExchangeRequest_End:
		if err := s.admitBody(h, len(op.End.GetData())); err != nil {
			return err
		}
		return r.End(ctx, op.End.GetData())
	case *pb.ExchangeRequest_FlushHeaders:
		return r.FlushHeaders()
	case *pb.ExchangeRequest_SetTimeout:
		d := durationOrZero(op.SetTimeout.GetTimeout())
		if d < 0 {
			return badArgument("set_timeout: the timeout must be >= 0")
		}
		r.SetTimeout(d)
		return nil
	case *pb.ExchangeRequest_Abort:
		r.Abort()
		return nil
	case *pb.ExchangeRequest_Destroy:
		r.Destroy(nodeErrorFromProto(op.Destroy.GetError()))
		return nil
	case *pb.ExchangeRequest_FollowRedirect:
		s.stopIfRoleChanged(h)
		return r.FollowRedirect()
	case *pb.ExchangeRequest_Login:
		s.stopIfRoleChanged(h)
		if err := s.admitLogin(h, op.Login.GetUsername(), op.Login.GetPassword()); err != nil {
			return err
		}
		return r.Login(op.Login.GetUsername(), op.Login.GetPassword())
	case *pb.ExchangeRequest_Start:
		return badArgument("start is only allowed as the first message")
	default:
		return badArgument("empty Exchange message")
	}
}
