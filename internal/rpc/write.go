package rpc

import (
	"errors"
	"io"

	"google.golang.org/grpc"

	pb "github.com/httpgateway/httpgateway/gen/httpgateway/v1"
)

// Write streams body chunks into one request. Each chunk is written with
// ClientRequest.Write, which returns only once the chunk was handed to the
// operating system, before the next message is received: the gateway holds
// at most one chunk per stream (plus what gRPC's flow-control window
// admits), so gRPC flow control is the backpressure. A chunk with `end` is
// request.end(chunk) and closes the stream. Cancelling a Write stream does
// not abort the request (a chunk in flight stays queued, as in Node).
func (c *clientRequestService) Write(stream grpc.ClientStreamingServer[pb.WriteRequest, pb.WriteResponse]) error {
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
		msg, err := stream.Recv()
		if errors.Is(err, io.EOF) {
			if h == nil {
				return toStatus(badArgument("Write: the stream carried no message"))
			}
			return stream.SendAndClose(&pb.WriteResponse{BytesWritten: written})
		}
		if err != nil {
			return err // the stream failed (cancelled); it is a status already
		}
		if h == nil {
			if h, err = c.handle(msg.GetRequestId()); err != nil {
				return err
			}
			h.attach()
		} else if id := msg.GetRequestId(); id != "" && id != h.id {
			return toStatus(badArgument("Write: request_id changed within the stream"))
		}
		h.touch()
		if err := c.svc.admitBody(h, len(msg.GetChunk())); err != nil {
			return toStatus(h.endOverLimit(err))
		}
		if msg.GetEnd() {
			if err := h.req.End(ctx, msg.GetChunk()); err != nil {
				return toStatus(err)
			}
			written += uint64(len(msg.GetChunk()))
			return stream.SendAndClose(&pb.WriteResponse{BytesWritten: written, Ended: true})
		}
		if err := h.req.Write(ctx, msg.GetChunk()); err != nil {
			return toStatus(err)
		}
		written += uint64(len(msg.GetChunk()))
	}
}
