package rpc

import (
	"context"
	"errors"
	"io"

	"google.golang.org/grpc"

	pb "github.com/httpgateway/httpgateway/gen/httpgateway/v1"
)

// Write streams body chunks into one request. Each chunk is written with
// ClientRequest.WriteBorrowed, which returns once the request holds no
// more than its high-water mark (a chunk or so) unwritten, before the next
// message is received: the gateway holds about one chunk per stream (plus
// what gRPC's flow-control window admits), so gRPC flow control is the
// backpressure. A chunk is lent, not copied (writeMessage): it stays in
// the buffer gRPC received it in until the request wrote it. A chunk with
// `end` is request.end(chunk) and closes the stream. Cancelling a Write
// stream does not abort the request (a chunk in flight stays queued, as in
// Node).
func (c *clientRequestService) Write(stream grpc.ClientStreamingServer[pb.WriteRequest, pb.WriteResponse]) error {
	return c.write(plainWrite{stream})
}

// writeStream is what Write needs of its stream: ownedWrite checks the
// owner of each message's request, plainWrite does not.
type writeStream interface {
	Context() context.Context
	// recv receives the next message into m.
	recv(m *writeMessage) error
	SendAndClose(*pb.WriteResponse) error
}

type plainWrite struct {
	grpc.ClientStreamingServer[pb.WriteRequest, pb.WriteResponse]
}

func (w plainWrite) recv(m *writeMessage) error { return w.RecvMsg(m) }

func (c *clientRequestService) write(stream writeStream) error {
	ctx := stream.Context()
	var (
		h       *handle
		written uint64
	)
	defer func() {
		if h != nil {
			h.detach()
		}
	}()
	for {
		var msg writeMessage
		err := stream.recv(&msg)
		if errors.Is(err, io.EOF) {
			if h == nil {
				return toStatus(badArgument("Write: the stream carried no message"))
			}
			return stream.SendAndClose(&pb.WriteResponse{BytesWritten: written})
		}
		if err != nil {
			return err // the stream failed (cancelled); it is a status already
		}
		release := msg.lend()
		if h, err = c.writeTarget(h, msg.GetRequestId()); err != nil {
			release()
			return err
		}
		n := len(msg.GetChunk())
		if err := c.svc.admitBody(h, n); err != nil {
			release()
			return toStatus(h.endOverLimit(err))
		}
		// From here the request gives the chunk's buffer back (release).
		if msg.GetEnd() {
			if err := h.req.EndBorrowed(ctx, msg.GetChunk(), release); err != nil {
				return toStatus(err)
			}
			written += uint64(n)
			return stream.SendAndClose(&pb.WriteResponse{BytesWritten: written, Ended: true})
		}
		if err := h.req.WriteBorrowed(ctx, msg.GetChunk(), release); err != nil {
			return toStatus(err)
		}
		written += uint64(n)
	}
}

// writeTarget is the handle a Write stream's message is for: the one its
// first message names (attached to the stream), then the same one.
func (c *clientRequestService) writeTarget(h *handle, id string) (*handle, error) {
	if h == nil {
		var err error
		if h, err = c.handle(id); err != nil {
			return nil, err
		}
		h.attach()
	} else if id != "" && id != h.id {
		return h, toStatus(badArgument("Write: request_id changed within the stream"))
	}
	h.touch()
	return h, nil
}
