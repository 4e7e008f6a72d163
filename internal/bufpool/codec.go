package bufpool

import (
	"errors"
	"fmt"

	"google.golang.org/grpc/encoding"
	grpcproto "google.golang.org/grpc/encoding/proto"
	"google.golang.org/grpc/mem"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/protoadapt"
)

// Codec is gRPC's proto codec over a Pool, with one check more: a message
// is sent only if marshalling it wrote exactly the bytes proto.Size
// reported. gRPC's codec sends the whole buffer of that size either way;
// over a cleared pool a short write would send zeros, over this one the
// tail of whatever message used the buffer before (another caller's body,
// perhaps). A message that changes while it is marshalled is the only way
// to get there, and none of the gateway's does; the check makes it an
// error instead of a leak, for the price of a comparison. Make one with
// NewCodec (the zero Codec has no pool).
type Codec struct{ pool mem.BufferPool }

var _ encoding.CodecV2 = Codec{}

// NewCodec returns the codec over p.
func NewCodec(p mem.BufferPool) Codec { return Codec{pool: p} }

// errSizeChanged is what Marshal returns when the message did not fill
// the buffer its size called for.
var errSizeChanged = errors.New("proto: message size changed while it was marshalled")

// Marshal marshals v: into a pooled buffer of its size when it is over
// gRPC's pooling threshold, as gRPC's codec does.
func (c Codec) Marshal(v any) (mem.BufferSlice, error) {
	m := messageOf(v)
	if m == nil {
		return nil, fmt.Errorf("proto: failed to marshal, message is %T, want proto.Message", v)
	}
	size := proto.Size(m)
	// UseCachedSize reuses the sizes the Size call above just computed.
	opts := proto.MarshalOptions{UseCachedSize: true}
	if mem.IsBelowBufferPoolingThreshold(size) {
		b, err := opts.Marshal(m)
		if err != nil {
			return nil, err
		}
		return mem.BufferSlice{mem.SliceBuffer(b)}, nil
	}
	buf := c.pool.Get(size)
	out, err := opts.MarshalAppend((*buf)[:0], m)
	if err == nil {
		err = filled(out, *buf)
	}
	if err != nil {
		c.pool.Put(buf)
		return nil, err
	}
	return mem.BufferSlice{mem.NewBuffer(buf, c.pool)}, nil
}

// filled reports whether out, what marshalling appended to buf[:0], is
// exactly buf: same start, same length.
func filled(out, buf []byte) error {
	if len(out) != len(buf) || (len(out) > 0 && &out[0] != &buf[0]) {
		return fmt.Errorf("%w: %d bytes for %d", errSizeChanged, len(out), len(buf))
	}
	return nil
}

// BufferUnmarshaler is a message that decodes itself from the buffers
// gRPC received it in, and may keep referring to them instead of copying:
// it takes references of its own (mem.Buffer.Ref, MaterializeToBuffer)
// and frees them when done; gRPC frees data's after Unmarshal returns.
// Pooled buffers are not cleared, so whoever keeps one must free it only
// once nothing reads it any more.
type BufferUnmarshaler interface {
	UnmarshalBuffers(data mem.BufferSlice, pool mem.BufferPool) error
}

// Unmarshal hands data to a BufferUnmarshaler as it is. Any other message
// is gRPC's way: the bytes gathered in one pooled buffer, then parsed
// (which copies what it keeps).
func (c Codec) Unmarshal(data mem.BufferSlice, v any) error {
	if u, ok := v.(BufferUnmarshaler); ok {
		return u.UnmarshalBuffers(data, c.pool)
	}
	m := messageOf(v)
	if m == nil {
		return fmt.Errorf("proto: failed to unmarshal, message is %T, want proto.Message", v)
	}
	buf := data.MaterializeToBuffer(c.pool)
	defer buf.Free()
	return proto.Unmarshal(buf.ReadOnlyData(), m)
}

// Name is the codec's name: it replaces gRPC's "proto" codec.
func (Codec) Name() string { return grpcproto.Name }

func messageOf(v any) proto.Message {
	switch v := v.(type) {
	case protoadapt.MessageV1:
		return protoadapt.MessageV2Of(v)
	case protoadapt.MessageV2:
		return v
	}
	return nil
}
