package main

import (
	"google.golang.org/grpc/experimental"

	"github.com/httpgateway/httpgateway/internal/bufpool"
)

// gRPC's buffers come from a pool that does not clear them (see
// internal/bufpool for why and what it saved). It is set here, in an
// init, because gRPC reads the default pool when servers, clients and
// its proto codec are made, and asks that it be set only at
// initialisation.
func init() { experimental.SetDefaultBufferPool(bufpool.New()) }
