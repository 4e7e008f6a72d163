package rpc

import (
	"bytes"
	"context"
	"errors"
	"testing"

	"google.golang.org/grpc"
	"google.golang.org/grpc/mem"

	pb "github.com/httpgateway/httpgateway/gen/httpgateway/v1"
)

// fakeFetch is a ClientRequestServiceServer whose Fetch runs fn.
type fakeFetch struct {
	pb.UnimplementedClientRequestServiceServer
	fn func(ctx context.Context, in *pb.FetchRequest) (*pb.FetchResponse, error)
}

func (f fakeFetch) Fetch(ctx context.Context, in *pb.FetchRequest) (*pb.FetchResponse, error) {
	return f.fn(ctx, in)
}

// TestFetchHandlerLendsBody: fetchHandler passes a lent body down in the
// context; the buffer goes back exactly once: by whoever took it, or by
// the handler when the call returns without anyone taking it (refused by
// an interceptor, or failed first).
func TestFetchHandlerLendsBody(t *testing.T) {
	pool := &countingPool{BufferPool: mem.NewTieredBufferPool(64 << 10)}
	body := bytes.Repeat([]byte("fetch body "), 20<<10) // 220 KiB: lent
	wire := mustMarshal(t, &pb.FetchRequest{Url: "http://127.0.0.1/", Method: "PUT", Body: body})
	dec := func(m any) error {
		data := mem.BufferSlice{mem.Copy(wire, pool)}
		defer data.Free()
		return m.(*fetchMessage).UnmarshalBuffers(data, pool)
	}
	refuse := func(context.Context, any, *grpc.UnaryServerInfo, grpc.UnaryHandler) (any, error) {
		return nil, errors.New("refused")
	}
	pass := func(ctx context.Context, req any, _ *grpc.UnaryServerInfo, h grpc.UnaryHandler) (any, error) {
		return h(ctx, req)
	}
	var taken func()
	for _, tc := range []struct {
		name        string
		interceptor grpc.UnaryServerInterceptor
		fetch       func(ctx context.Context, in *pb.FetchRequest) (*pb.FetchResponse, error)
		heldAfter   int // buffers still out when the call returned
	}{
		{"refused by an interceptor", refuse, nil, 0},
		{"failed before taking it", pass, func(ctx context.Context, in *pb.FetchRequest) (*pb.FetchResponse, error) {
			if !bytes.Equal(in.GetBody(), body) {
				t.Error("the handler saw another body")
			}
			return nil, errors.New("bad argument")
		}, 0},
		{"taken", nil, func(ctx context.Context, in *pb.FetchRequest) (*pb.FetchResponse, error) {
			taken = takeLentBody(ctx)
			if taken == nil || takeLentBody(ctx) != nil {
				t.Error("the body was not lent once")
			}
			return &pb.FetchResponse{}, nil
		}, 1},
	} {
		taken = nil
		_, _ = fetchHandler(fakeFetch{fn: tc.fetch}, context.Background(), dec, tc.interceptor)
		if held := pool.got - pool.put; held != tc.heldAfter {
			t.Fatalf("%s: %d buffers out when the call returned, want %d", tc.name, held, tc.heldAfter)
		}
		if taken != nil {
			taken()
			if pool.got != pool.put {
				t.Fatalf("%s: the taker's release did not give the buffer back", tc.name)
			}
		}
	}
}
