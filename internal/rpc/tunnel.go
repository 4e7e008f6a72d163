package rpc

import (
	"errors"
	"io"
	"net"
	"sync"

	"google.golang.org/grpc"

	pb "github.com/httpgateway/httpgateway/gen/httpgateway/v1"
)

// tunnelReadBytes is the most bytes one TunnelResponse carries.
const tunnelReadBytes = 32 << 10

// closeWriter is a connection whose write side can be shut alone
// (*net.TCPConn, *tls.Conn, *net.UnixConn).
type closeWriter interface{ CloseWrite() error }

// closeWrite shuts c's write side, looking through wrappers that expose
// the connection they wrap (NetConn, as the agent's counting conn and
// crypto/tls do). It reports false when c cannot half-close.
func closeWrite(c net.Conn) bool {
	for c != nil {
		if cw, ok := c.(closeWriter); ok {
			return cw.CloseWrite() == nil
		}
		u, ok := c.(interface{ NetConn() net.Conn })
		if !ok {
			return false
		}
		c = u.NetConn()
	}
	return false
}

// Tunnel carries raw bytes both ways on the socket a request handed over by
// 'upgrade' or 'connect'. The first message names the request; the socket
// is taken from it once (FAILED_PRECONDITION ERR_GATEWAY_NO_TUNNEL if there
// is none, or it was taken), and the handle is freed.
//
// Goroutines: the handler reads the socket and sends `data` frames; a
// caller-to-socket goroutine receives frames and writes them, so each
// direction is backpressured by the other side (a Send blocks on gRPC flow
// control, a Write on the socket). A caller's `end` shuts the socket's
// write side only; the upstream's EOF is sent as `end`. The socket closes
// when either side ends its stream: the upstream's EOF (after `end` went
// out), the caller's half-close or cancellation. The handler closes the
// socket before it returns, and the caller-to-socket goroutine ends when
// its Recv fails, which gRPC makes happen once the handler returned.
//
// The Tunnel's bounds (Options.Limits: MaxTunnelDuration, MaxTunnelBytes,
// both directions counted together) close the socket when passed, and the
// Tunnel answers RESOURCE_EXHAUSTED with the limit's code; bytes past the
// byte bound are not carried. The duration timer's goroutine only closes
// the socket; the timer is stopped when the handler returns.
func (c *clientRequestService) Tunnel(stream grpc.BidiStreamingServer[pb.TunnelRequest, pb.TunnelResponse]) error {
	first, err := stream.Recv()
	if errors.Is(err, io.EOF) {
		return toStatus(badArgument("Tunnel: the stream ended before naming a request"))
	}
	if err != nil {
		return err
	}
	id, ok := first.GetFrame().(*pb.TunnelRequest_RequestId)
	if !ok {
		return toStatus(badArgument("Tunnel: the first message must be request_id"))
	}
	h, err := c.handleFor(stream.Context(), id.RequestId)
	if err != nil {
		return err
	}
	tun, ok := h.req.TakeTunnel()
	if !ok {
		return toStatus(gwError(codeNoTunnel, "request "+id.RequestId+" has no socket handed over by upgrade or connect (or it was taken)"))
	}
	h.tunnelTaken.Store(true)
	c.svc.handles.noteFinished(h, false)

	conn := tun.Conn
	var closeOnce sync.Once
	closeConn := func() { closeOnce.Do(func() { _ = conn.Close() }) }
	defer closeConn()
	meter := c.svc.startTunnelMeter(closeConn)
	defer meter.stop()

	// callerDone is closed when the caller's side ended the tunnel (a
	// half-close or a failed Recv): the handler's read error is then the
	// close this goroutine made, not a failure.
	callerDone := make(chan struct{})
	go func() { // caller -> socket; ends when Recv fails (see above)
		defer close(callerDone)
		for {
			msg, err := stream.Recv()
			if err != nil {
				closeConn()
				return
			}
			switch f := msg.GetFrame().(type) {
			case *pb.TunnelRequest_Data:
				if !meter.add(len(f.Data)) {
					closeConn()
					return
				}
				if _, err := conn.Write(f.Data); err != nil {
					closeConn()
					return
				}
			case *pb.TunnelRequest_End:
				if !closeWrite(conn) {
					closeConn()
					return
				}
			}
		}
	}()

	// socket -> caller, on the handler goroutine.
	for {
		// A fresh buffer per frame: gRPC does not promise that a sent
		// message is no longer read once Send returned (stats handlers).
		buf := make([]byte, tunnelReadBytes)
		n, err := tun.Reader.Read(buf)
		if n > 0 {
			if !meter.add(n) {
				return toStatus(meter.err())
			}
			if serr := stream.Send(&pb.TunnelResponse{Frame: &pb.TunnelResponse_Data{Data: buf[:n]}}); serr != nil {
				return serr
			}
		}
		if errors.Is(err, io.EOF) {
			if serr := stream.Send(&pb.TunnelResponse{Frame: &pb.TunnelResponse_End{End: &pb.TunnelEnd{}}}); serr != nil {
				return serr
			}
			return nil
		}
		if err != nil {
			if lerr := meter.err(); lerr != nil {
				return toStatus(lerr) // a bound closed the socket
			}
			select {
			case <-callerDone:
				return nil // the caller ended the tunnel; the read failed on our close
			default:
			}
			if errors.Is(err, net.ErrClosed) {
				return nil
			}
			return toStatus(nodeErrorOf(err))
		}
	}
}
