package rpc

import (
	"bytes"
	"sync/atomic"

	"google.golang.org/grpc/mem"
	"google.golang.org/protobuf/encoding/protowire"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/reflect/protoreflect"

	pb "github.com/httpgateway/httpgateway/gen/httpgateway/v1"
	"github.com/httpgateway/httpgateway/internal/bufpool"
)

// Body chunks received in place. A streamed upload moves every body byte
// through a Write or Exchange message; proto.Unmarshal copies each chunk
// into a fresh slice (256 KiB per message at the usual chunk size), which
// was most of an upload's garbage. The messages below keep a large chunk
// in the pooled buffer gRPC gathered the message into instead (its frames
// are at most 16 KiB, so a large message is gathered, as for any codec),
// and the chunk is lent to the request (httpengine's WriteBorrowed), which
// gives the buffer back once the bytes are written.
//
// Only a chunk that is most of its message is lent: the request's
// backpressure counts the chunk's bytes, so a small chunk riding in a
// large message (unknown fields, or a split view of a larger frame) would
// pin far more memory than it is charged for. Such a chunk is copied, as
// proto.Unmarshal would, and the buffer goes back at once.
//
// With the gateway's codec (internal/bufpool, installed by serve) gRPC
// calls UnmarshalBuffers. Under another codec (gRPC's own, in tests that
// serve without it) the embedded message is the proto.Message that gets
// unmarshalled, holding a copy as usual, and lend has nothing to give
// back.

// minLent is the smallest chunk lent rather than copied: below it the
// copy is cheap and its garbage small.
const minLent = 32 << 10

// lentChunk is the buffer a received message's chunk points into.
type lentChunk struct {
	held mem.Buffer // nil when the chunk is a copy, or empty
}

// receive decodes data into m, with the bytes field fd pointing into the
// buffer that holds the message whole (data's own, or a pooled copy when
// gRPC received it in frames) when the chunk is large and most of the
// message; the buffer is kept while it does. Otherwise the chunk is a copy.
func (l *lentChunk) receive(data mem.BufferSlice, pool mem.BufferPool, m proto.Message, fd protoreflect.FieldDescriptor) error {
	buf := data.MaterializeToBuffer(pool)
	aliased, err := unmarshalLending(buf.ReadOnlyData(), m, fd)
	if err != nil || !aliased {
		buf.Free()
		return err
	}
	r := m.ProtoReflect()
	if chunk := r.Get(fd).Bytes(); len(chunk) < minLent || len(chunk) < buf.Len()/2 {
		r.Set(fd, protoreflect.ValueOfBytes(bytes.Clone(chunk)))
		buf.Free()
		return nil
	}
	l.held = buf
	return nil
}

// lend returns the func that gives the chunk's buffer back, to be called
// when nothing reads the chunk any more (a no-op when the chunk is a
// copy). The message lets go of the buffer: the func is its only way back.
// A second call does nothing: freeing a gRPC buffer twice could free it
// for whoever got it from the pool after the first.
func (l *lentChunk) lend() func() {
	buf := l.held
	if buf == nil {
		return func() {}
	}
	l.held = nil
	var done atomic.Bool
	return func() {
		if done.CompareAndSwap(false, true) {
			buf.Free()
		}
	}
}

// writeMessage is a received WriteRequest whose chunk is lent.
type writeMessage struct {
	pb.WriteRequest
	lentChunk
}

var (
	_ bufpool.BufferUnmarshaler = (*writeMessage)(nil)
	_ bufpool.BufferUnmarshaler = (*exchangeMessage)(nil)
	_ bufpool.BufferUnmarshaler = (*fetchMessage)(nil)

	writeChunkField    = (*pb.WriteRequest)(nil).ProtoReflect().Descriptor().Fields().ByName("chunk")
	exchangeWriteField = (*pb.ExchangeRequest)(nil).ProtoReflect().Descriptor().Fields().ByName("write")
)

func (m *writeMessage) UnmarshalBuffers(data mem.BufferSlice, pool mem.BufferPool) error {
	return m.receive(data, pool, &m.WriteRequest, writeChunkField)
}

// exchangeMessage is a received ExchangeRequest whose write op's chunk is
// lent.
type exchangeMessage struct {
	pb.ExchangeRequest
	lentChunk
}

func (m *exchangeMessage) UnmarshalBuffers(data mem.BufferSlice, pool mem.BufferPool) error {
	return m.receive(data, pool, &m.ExchangeRequest, exchangeWriteField)
}

// unmarshalLending is proto.Unmarshal(b, m), except that the bytes field
// fd, a field of m itself, points into b instead of being a copy; it
// reports whether it does. Parsing a message is merging its parts in order
// (the protobuf encoding's rule), so m is unmarshalled from what precedes
// fd's last occurrence, then fd is set to it, then what follows is merged
// in: a later member of fd's oneof replaces it exactly as proto.Unmarshal
// would have. Earlier occurrences of fd are skipped (the last one wins).
// proto.Unmarshal does all the parsing but fd's; input the scan cannot walk
// goes to it whole, for its error (or its copy). FuzzUnmarshalLending holds
// the result to proto.Unmarshal's.
func unmarshalLending(b []byte, m proto.Message, fd protoreflect.FieldDescriptor) (bool, error) {
	var (
		alias      []byte
		start, end = -1, -1 // fd's last occurrence in b
		skipped    bool     // fd occurs more than once
	)
	for i := 0; i < len(b); {
		num, typ, n := protowire.ConsumeTag(b[i:])
		if n < 0 || num > protowire.MaxValidNumber {
			return false, proto.Unmarshal(b, m)
		}
		v := protowire.ConsumeFieldValue(num, typ, b[i+n:])
		if v < 0 {
			return false, proto.Unmarshal(b, m)
		}
		if num == fd.Number() && typ == protowire.BytesType {
			skipped = skipped || start >= 0
			alias, _ = protowire.ConsumeBytes(b[i+n : i+n+v])
			alias = alias[:len(alias):len(alias)] // an append must not run into b
			start, end = i, i+n+v
		}
		i += n + v
	}
	if start < 0 {
		return false, proto.Unmarshal(b, m)
	}
	before := b[:start]
	if skipped {
		before = withoutField(before, fd.Number())
	}
	if err := proto.Unmarshal(before, m); err != nil {
		return false, err
	}
	if len(alias) == 0 {
		alias = []byte{} // present (a oneof member), and pointing at nothing of b
	}
	r := m.ProtoReflect()
	r.Set(fd, protoreflect.ValueOfBytes(alias))
	if err := (proto.UnmarshalOptions{Merge: true}).Unmarshal(b[end:], m); err != nil {
		return false, err
	}
	if o := fd.ContainingOneof(); o != nil && r.WhichOneof(o) != fd {
		return false, nil // a later member of the oneof took its place
	}
	return len(alias) > 0, nil
}

// withoutField is a copy of b, a walkable message, without the bytes
// occurrences of field num.
func withoutField(b []byte, num protowire.Number) []byte {
	out := make([]byte, 0, len(b))
	for i := 0; i < len(b); {
		n, typ, tn := protowire.ConsumeTag(b[i:])
		end := i + tn + protowire.ConsumeFieldValue(n, typ, b[i+tn:])
		if n != num || typ != protowire.BytesType {
			out = append(out, b[i:end]...)
		}
		i = end
	}
	return out
}
