package main

import (
	"google.golang.org/grpc"
	"google.golang.org/grpc/encoding"
	"google.golang.org/grpc/experimental"

	"github.com/httpgateway/httpgateway/internal/bufpool"
)

// grpcBuffers is the process's pool of gRPC buffers, which are not
// cleared (see internal/bufpool for why and what it saved): the proto
// codec's and in-process clients' (set in init: gRPC asks that the default
// pool and codecs be set only at initialisation) and the server's
// (serverBufferPool: gRPC's server options took the default pool before
// this init ran).
var grpcBuffers = bufpool.New()

func init() {
	experimental.SetDefaultBufferPool(grpcBuffers)
	encoding.RegisterCodecV2(bufpool.NewCodec(grpcBuffers))
}

// serverBufferPool is the server option that makes the gRPC server read
// frames and parse messages into grpcBuffers.
func serverBufferPool() grpc.ServerOption { return experimental.BufferPool(grpcBuffers) }
