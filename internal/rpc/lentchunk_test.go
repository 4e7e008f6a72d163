package rpc

import (
	"bytes"
	"testing"
	"unsafe"

	"google.golang.org/grpc/mem"
	"google.golang.org/protobuf/encoding/protowire"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/reflect/protoreflect"

	pb "github.com/httpgateway/httpgateway/gen/httpgateway/v1"
)

// FuzzUnmarshalLending holds unmarshalLending to proto.Unmarshal, for the
// two messages that lend their chunk (the bytes field of WriteRequest, and
// the oneof member of ExchangeRequest) and for FetchRequest's body (a
// bytes field among nested messages): the same inputs refused, equal
// messages from the rest, and a chunk said to be lent is inside the input.
func FuzzUnmarshalLending(f *testing.F) {
	type target struct {
		new func() proto.Message
		fd  protoreflect.FieldDescriptor
	}
	fetchBody := (*pb.FetchRequest)(nil).ProtoReflect().Descriptor().Fields().ByName("body")
	targets := []target{
		{func() proto.Message { return new(pb.WriteRequest) }, writeChunkField},
		{func() proto.Message { return new(pb.ExchangeRequest) }, exchangeWriteField},
		{func() proto.Message { return new(pb.FetchRequest) }, fetchBody},
	}
	marshal := func(m proto.Message) []byte {
		b, err := proto.Marshal(m)
		if err != nil {
			f.Fatal(err)
		}
		return b
	}
	f.Add(marshal(&pb.WriteRequest{RequestId: "r1", Chunk: []byte("body"), End: true}))
	f.Add(marshal(&pb.ExchangeRequest{Op: &pb.ExchangeRequest_Write{Write: []byte("chunk")}}))
	f.Add(marshal(&pb.ExchangeRequest{Op: &pb.ExchangeRequest_Write{Write: []byte{}}}))
	f.Add(marshal(&pb.FetchRequest{Url: "http://a/", Body: []byte("b"), Headers: []*pb.Header{{Name: "a", Value: "b"}}}))
	f.Add([]byte{})
	// Field 5 is ExchangeRequest's write and FetchRequest's body; 2 is
	// WriteRequest's chunk. Repeated occurrences (the last wins), a oneof
	// member after write (it wins) or with the wrong wire type (it does
	// not), an unknown group, invalid UTF-8, a truncated length, a field
	// number past the largest.
	var b []byte
	for _, num := range []protowire.Number{2, 5} {
		b = protowire.AppendTag(b, num, protowire.BytesType)
		b = protowire.AppendBytes(b, []byte("first"))
	}
	b = protowire.AppendTag(b, 1, protowire.BytesType)
	b = protowire.AppendBytes(b, []byte("id"))
	for _, num := range []protowire.Number{2, 5} {
		b = protowire.AppendTag(b, num, protowire.BytesType)
		b = protowire.AppendBytes(b, []byte("second"))
	}
	b = protowire.AppendTag(b, 10, protowire.StartGroupType)
	b = protowire.AppendTag(b, 1, protowire.Fixed32Type)
	b = protowire.AppendFixed32(b, 1)
	b = protowire.AppendTag(b, 10, protowire.EndGroupType)
	f.Add(b)
	f.Add(append(bytes.Clone(b), protowire.AppendVarint(protowire.AppendTag(nil, 6, protowire.VarintType), 1)...))
	f.Add(append(bytes.Clone(b), protowire.AppendBytes(protowire.AppendTag(nil, 6, protowire.BytesType), nil)...))
	f.Add(append(protowire.AppendTag(nil, 1, protowire.BytesType), 2, 0xff, 0xfe))
	f.Add(append(protowire.AppendTag(nil, 2, protowire.BytesType), 9, 'x'))
	f.Add([]byte("\x88\x88\x88\x8800"))
	f.Fuzz(func(t *testing.T, b []byte) {
		for _, tg := range targets {
			want := tg.new()
			wantErr := proto.Unmarshal(b, want)
			got := tg.new()
			lent, gotErr := unmarshalLending(b, got, tg.fd)
			if (gotErr == nil) != (wantErr == nil) {
				t.Fatalf("%T: unmarshalLending error %v, proto.Unmarshal error %v", got, gotErr, wantErr)
			}
			if gotErr != nil {
				continue
			}
			if !proto.Equal(got, want) {
				t.Fatalf("%T: unmarshalLending %v, proto.Unmarshal %v", got, got, want)
			}
			if lent {
				chunk := got.ProtoReflect().Get(tg.fd).Bytes()
				if len(chunk) == 0 || !inside(chunk, b) {
					t.Fatalf("%T: lent a chunk of %d bytes that is not in the input", got, len(chunk))
				}
			}
		}
	})
}

// inside reports whether p lies within b.
func inside(p, b []byte) bool {
	start := uintptr(unsafe.Pointer(unsafe.SliceData(b)))
	q := uintptr(unsafe.Pointer(unsafe.SliceData(p)))
	return q >= start && q+uintptr(len(p)) <= start+uintptr(len(b))
}

// countingPool counts the buffers it hands out and gets back.
type countingPool struct {
	mem.BufferPool
	got, put int
}

func (p *countingPool) Get(n int) *[]byte { p.got++; return p.BufferPool.Get(n) }
func (p *countingPool) Put(b *[]byte)     { p.put++; p.BufferPool.Put(b) }

// TestWriteMessageHoldsItsBuffer: a large chunk is lent from the buffer
// its message was gathered into (frames), or from the one buffer it came
// in, without a copy of its own, until the func lend returns is called
// (once: a second call frees nothing); a small chunk, or one that is a
// small part of its message, is a copy and nothing is held; a refused
// message frees what it took.
func TestWriteMessageHoldsItsBuffer(t *testing.T) {
	pool := &countingPool{BufferPool: mem.NewTieredBufferPool(64 << 10)}
	frames := func(b []byte) mem.BufferSlice {
		var s mem.BufferSlice
		for len(b) > 0 {
			n := min(len(b), 16<<10)
			s = append(s, mem.Copy(b[:n], pool))
			b = b[n:]
		}
		return s
	}
	whole := func(b []byte) mem.BufferSlice { return mem.BufferSlice{mem.Copy(b, pool)} }
	chunk := bytes.Repeat([]byte("0123456789abcdef"), 8<<10) // 128 KiB
	wire := mustMarshal(t, &pb.WriteRequest{RequestId: "r", Chunk: chunk, End: true})
	// A 1 KiB chunk in a message made large by an unknown field.
	padded := protowire.AppendBytes(protowire.AppendTag(mustMarshal(t, &pb.WriteRequest{Chunk: chunk[:1<<10]}),
		15, protowire.BytesType), make([]byte, 1<<20))

	for _, tc := range []struct {
		name  string
		split func([]byte) mem.BufferSlice // how gRPC received the message
		wire  []byte
		chunk []byte
		lent  bool
	}{
		{"frames", frames, wire, chunk, true},
		{"one buffer", whole, wire, chunk, true},
		{"small chunk", frames, mustMarshal(t, &pb.WriteRequest{Chunk: chunk[:4<<10]}), chunk[:4<<10], false},
		{"small part of its message", frames, padded, chunk[:1<<10], false},
	} {
		data := tc.split(tc.wire)
		var m writeMessage
		if err := m.UnmarshalBuffers(data, pool); err != nil {
			t.Fatal(err)
		}
		data.Free() // as gRPC does once Unmarshal returned
		if !bytes.Equal(m.Chunk, tc.chunk) {
			t.Fatalf("%s: decoded %d chunk bytes, want %d", tc.name, len(m.Chunk), len(tc.chunk))
		}
		if held := pool.got - pool.put; held != map[bool]int{true: 1}[tc.lent] {
			t.Fatalf("%s: the message holds %d buffers, lent %v", tc.name, held, tc.lent)
		}
		if !tc.lent {
			continue
		}
		release := m.lend()
		if pool.got != pool.put+1 {
			t.Fatalf("%s: lend gave the buffer back", tc.name)
		}
		release()
		// gRPC reuses buffer objects: a second Free would free the next
		// buffer's, here other's.
		other := mem.Copy(chunk, pool)
		release()
		if got := other.ReadOnlyData(); pool.got != pool.put+1 || !bytes.Equal(got, chunk) {
			t.Fatalf("%s: a second release freed another buffer", tc.name)
		}
		other.Free()
		if pool.got != pool.put {
			t.Fatalf("%s: pool: %d out, %d back after release (twice)", tc.name, pool.got, pool.put)
		}
	}

	data := frames(append(bytes.Clone(wire[:len(wire)-1]), 0x80)) // a truncated varint
	var m writeMessage
	err := m.UnmarshalBuffers(data, pool)
	data.Free()
	if err == nil {
		t.Fatal("a truncated message was accepted")
	}
	m.lend()()
	if pool.got != pool.put {
		t.Fatalf("refused: pool: %d out, %d back", pool.got, pool.put)
	}
}

func mustMarshal(t *testing.T, m proto.Message) []byte {
	t.Helper()
	b, err := proto.Marshal(m)
	if err != nil {
		t.Fatal(err)
	}
	return b
}
