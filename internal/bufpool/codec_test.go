package bufpool

import (
	"bytes"
	"errors"
	"testing"

	"google.golang.org/grpc/mem"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/wrapperspb"
)

// TestCodecRoundTrip: small and pooled (over the threshold) messages
// marshal to exactly proto.Marshal's bytes and back, through buffers that
// held other bytes before.
func TestCodecRoundTrip(t *testing.T) {
	p := New()
	c := NewCodec(p)
	for _, n := range []int{0, 10, 1 << 10, 100 << 10, 2 << 20} {
		// Dirty the tier the message will use.
		junk := p.Get(n + 16)
		for i := range *junk {
			(*junk)[i] = 0xAA
		}
		p.Put(junk)

		in := wrapperspb.Bytes(bytes.Repeat([]byte{'x'}, n))
		got, err := c.Marshal(in)
		if err != nil {
			t.Fatal(err)
		}
		want, _ := proto.Marshal(in)
		if !bytes.Equal(got.Materialize(), want) {
			t.Fatalf("%d-byte message: marshalled bytes differ from proto.Marshal's", n)
		}
		out := &wrapperspb.BytesValue{}
		if err := c.Unmarshal(got, out); err != nil {
			t.Fatal(err)
		}
		got.Free()
		if !proto.Equal(in, out) {
			t.Fatalf("%d-byte message: round trip changed it", n)
		}
	}
	if _, err := c.Marshal("not a message"); err == nil {
		t.Error("Marshal of a string: no error")
	}
	if err := c.Unmarshal(mem.BufferSlice{mem.SliceBuffer([]byte{0xff})}, &wrapperspb.BytesValue{}); err == nil {
		t.Error("Unmarshal of garbage: no error")
	}
	if c.Name() != "proto" {
		t.Errorf("Name %q, want proto", c.Name())
	}
}

// TestFilled: only output that is the buffer itself, whole, passes; a
// short write (the tail would be stale bytes) or a reallocation (the
// buffer would not hold the message) is an error.
func TestFilled(t *testing.T) {
	buf := make([]byte, 8)
	for _, tc := range []struct {
		name string
		out  []byte
		ok   bool
	}{
		{"whole", buf, true},
		{"short", buf[:5], false},
		{"grown elsewhere", make([]byte, 8), false},
		{"longer", append(buf[:8:8], 1), false},
	} {
		err := filled(tc.out, buf)
		if (err == nil) != tc.ok || (err != nil && !errors.Is(err, errSizeChanged)) {
			t.Errorf("%s: %v", tc.name, err)
		}
	}
	if err := filled(nil, nil); err != nil {
		t.Errorf("empty: %v", err)
	}
}

// keeper is a BufferUnmarshaler that keeps what it was given.
type keeper struct {
	wrapperspb.BytesValue // a proto.Message too: the codec must prefer UnmarshalBuffers
	data                  mem.BufferSlice
	pool                  mem.BufferPool
}

func (k *keeper) UnmarshalBuffers(data mem.BufferSlice, pool mem.BufferPool) error {
	k.data, k.pool = data, pool
	return nil
}

// TestCodecHandsBuffersToBufferUnmarshaler: a BufferUnmarshaler gets
// gRPC's buffers as they are, and the codec's pool, instead of a parse.
func TestCodecHandsBuffersToBufferUnmarshaler(t *testing.T) {
	p := New()
	c := NewCodec(p)
	data := mem.BufferSlice{mem.SliceBuffer([]byte{0x0a, 1}), mem.SliceBuffer([]byte{'x'})}
	var k keeper
	if err := c.Unmarshal(data, &k); err != nil {
		t.Fatal(err)
	}
	if len(k.data) != 2 || &k.data[0] != &data[0] || k.pool != mem.BufferPool(p) {
		t.Fatalf("got %d buffers (same slice: %v), pool %v", len(k.data), len(k.data) > 0 && &k.data[0] == &data[0], k.pool)
	}
	if k.GetValue() != nil {
		t.Fatal("the message was parsed as well")
	}
}
