// Package bufpool is a gRPC buffer pool (google.golang.org/grpc/mem) that
// does not clear the buffers it hands out.
//
// gRPC's default pool clears every buffer on Get, all of its capacity, so
// that a code path reading past what it wrote can never see an earlier
// message's bytes. gRPC fills what it gets (a frame read with
// io.ReadFull, a message marshalled into a buffer of exactly its size),
// and uses uncleared pools itself (its transport's and ALTS' buffers), but
// does not export them. For the gateway the clearing was the largest
// single cost of moving bodies: 17% of its CPU streaming a 100 MiB upload
// (each 256 KiB Write message parsed into cleared buffers), 8% of a
// download (each Event marshalled into one). The tiers are gRPC's.
//
// Where it is used (cmd/gateway sets it up at start): the gRPC server
// (experimental.BufferPool: frames read, messages parsed), the proto codec
// (Codec, registered as "proto"; it is also the default pool, set with
// experimental.SetDefaultBufferPool, for gRPC clients in the process).
// gRPC's server options take the default pool when gRPC initialises, before
// any init of the gateway runs, so the server needs the option.
//
// What an uncleared buffer asks of its users: fill what you send. gRPC's
// transport does (frames are read with io.ReadFull; copies are exact);
// gRPC's own proto codec sends a buffer of the size proto.Size reported
// whatever the marshaller wrote, which is why the gateway's Codec checks
// that the two agree (see Codec).
package bufpool
