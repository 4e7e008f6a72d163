package main

import (
	"google.golang.org/grpc"
	"google.golang.org/grpc/encoding"
	"google.golang.org/grpc/experimental"
	"google.golang.org/grpc/mem"

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

// serverPool is the pool serve's gRPC server reads frames and parses
// messages into: grpcBuffers (a variable so that a test can watch it).
var serverPool mem.BufferPool = grpcBuffers

// serverBufferPool is the server option that gives the gRPC server
// serverPool.
func serverBufferPool() grpc.ServerOption { return experimental.BufferPool(serverPool) }
