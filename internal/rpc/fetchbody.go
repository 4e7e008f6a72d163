package rpc

import (
	"context"
	"slices"
	"sync/atomic"

	"google.golang.org/grpc"
	"google.golang.org/grpc/mem"

	pb "github.com/httpgateway/httpgateway/gen/httpgateway/v1"
)

// A Fetch body lent from gRPC's buffer, as Write and Exchange chunks are
// (lentchunk.go). Fetch is a unary call, whose message the generated
// handler decodes into a *pb.FetchRequest: the service is registered with
// its own Fetch handler (fetchHandler), which decodes a fetchMessage and
// passes its lent body down in the context. The request takes the body
// with EndBorrowed and gives the buffer back once written; if nothing
// took it (the call was refused before, or failed before writing), the
// handler gives it back when the call returns.

// fetchMessage is a received FetchRequest whose body is lent.
type fetchMessage struct {
	pb.FetchRequest
	lentChunk
}

var fetchBodyField = (*pb.FetchRequest)(nil).ProtoReflect().Descriptor().Fields().ByName("body")

func (m *fetchMessage) UnmarshalBuffers(data mem.BufferSlice, pool mem.BufferPool) error {
	return m.receive(data, pool, &m.FetchRequest, fetchBodyField)
}

// lentBody is a lent Fetch body on its way from fetchHandler to the
// request: taken once by fetch, or given back by fetchHandler.
type lentBody struct {
	release func()
	taken   atomic.Bool
}

type lentBodyKey struct{}

// takeLentBody returns the func that gives back the buffer of the Fetch
// body of ctx's call, or nil when the body is a copy (or already taken).
// Whoever takes it must see it called: EndBorrowed does.
func takeLentBody(ctx context.Context) func() {
	lb, _ := ctx.Value(lentBodyKey{}).(*lentBody)
	if lb == nil || !lb.taken.CompareAndSwap(false, true) {
		return nil
	}
	return lb.release
}

// fetchHandler is the generated Fetch handler (same interceptors, same
// info) for a fetchMessage.
func fetchHandler(srv any, ctx context.Context, dec func(any) error, interceptor grpc.UnaryServerInterceptor) (any, error) {
	in := new(fetchMessage)
	if err := dec(in); err != nil {
		return nil, err
	}
	if in.held != nil {
		lb := &lentBody{release: in.lend()}
		defer func() {
			if lb.taken.CompareAndSwap(false, true) {
				lb.release()
			}
		}()
		ctx = context.WithValue(ctx, lentBodyKey{}, lb)
	}
	fetch := func(ctx context.Context, req any) (any, error) {
		return srv.(pb.ClientRequestServiceServer).Fetch(ctx, req.(*pb.FetchRequest))
	}
	if interceptor == nil {
		return fetch(ctx, &in.FetchRequest)
	}
	info := &grpc.UnaryServerInfo{Server: srv, FullMethod: pb.ClientRequestService_Fetch_FullMethodName}
	return interceptor(ctx, &in.FetchRequest, info, fetch)
}

// clientRequestServiceDesc is pb.ClientRequestService_ServiceDesc with
// fetchHandler for Fetch.
func clientRequestServiceDesc() *grpc.ServiceDesc {
	desc := pb.ClientRequestService_ServiceDesc
	desc.Methods = slices.Clone(desc.Methods)
	for i := range desc.Methods {
		if desc.Methods[i].MethodName == "Fetch" {
			desc.Methods[i].Handler = fetchHandler
		}
	}
	return &desc
}
