package rpc

import (
	"bytes"
	"testing"

	"google.golang.org/grpc/mem"
	"google.golang.org/protobuf/encoding/protowire"
	"google.golang.org/protobuf/proto"

	pb "github.com/httpgateway/httpgateway/gen/httpgateway/v1"
)

// FuzzDecodeWriteRequest holds decodeWriteRequest to proto.Unmarshal: the
// same inputs refused, the same fields from the rest.
func FuzzDecodeWriteRequest(f *testing.F) {
	marshal := func(m *pb.WriteRequest) []byte {
		b, err := proto.Marshal(m)
		if err != nil {
			f.Fatal(err)
		}
		return b
	}
	f.Add(marshal(&pb.WriteRequest{RequestId: "r1", Chunk: []byte("body"), End: true}))
	f.Add(marshal(&pb.WriteRequest{Chunk: bytes.Repeat([]byte{0}, 300)}))
	f.Add([]byte{})
	// Repeated fields (the last wins), an unknown varint, an unknown
	// group, a known field with another wire type, invalid UTF-8, a
	// truncated length, a bool over one byte.
	var b []byte
	b = protowire.AppendTag(b, 2, protowire.BytesType)
	b = protowire.AppendBytes(b, []byte("first"))
	b = protowire.AppendTag(b, 2, protowire.BytesType)
	b = protowire.AppendBytes(b, []byte("second"))
	b = protowire.AppendTag(b, 9, protowire.VarintType)
	b = protowire.AppendVarint(b, 7)
	b = protowire.AppendTag(b, 10, protowire.StartGroupType)
	b = protowire.AppendTag(b, 1, protowire.Fixed32Type)
	b = protowire.AppendFixed32(b, 1)
	b = protowire.AppendTag(b, 10, protowire.EndGroupType)
	b = protowire.AppendTag(b, 3, protowire.Fixed64Type)
	b = protowire.AppendFixed64(b, 1)
	b = protowire.AppendTag(b, 3, protowire.VarintType)
	b = protowire.AppendVarint(b, 1<<40)
	f.Add(b)
	f.Add(append(protowire.AppendTag(nil, 1, protowire.BytesType), 2, 0xff, 0xfe))
	f.Add(append(protowire.AppendTag(nil, 2, protowire.BytesType), 9, 'x'))
	f.Add(protowire.AppendTag(nil, 10, protowire.EndGroupType))
	f.Fuzz(func(t *testing.T, b []byte) {
		var want pb.WriteRequest
		wantErr := proto.Unmarshal(b, &want)
		var got pb.WriteRequest
		gotErr := decodeWriteRequest(b, &got)
		if (gotErr == nil) != (wantErr == nil) {
			t.Fatalf("decodeWriteRequest error %v, proto.Unmarshal error %v", gotErr, wantErr)
		}
		if gotErr != nil {
			return
		}
		if got.RequestId != want.RequestId || !bytes.Equal(got.Chunk, want.Chunk) || got.End != want.End {
			t.Fatalf("decoded {%q %q %v}, proto.Unmarshal {%q %q %v}",
				got.RequestId, got.Chunk, got.End, want.RequestId, want.Chunk, want.End)
		}
	})
}

// countingPool counts the buffers it hands out and gets back.
type countingPool struct {
	mem.BufferPool
	got, put int
}

func (p *countingPool) Get(n int) *[]byte { p.got++; return p.BufferPool.Get(n) }
func (p *countingPool) Put(b *[]byte)     { p.put++; p.BufferPool.Put(b) }

// TestWriteMessageHoldsItsBuffer: a chunk received in frames is gathered
// into one pooled buffer that the message keeps, without a copy of its
// own, until the func lend returns is called; a message without a chunk
// keeps nothing; a refused one frees what it took.
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
	chunk := bytes.Repeat([]byte("0123456789abcdef"), 8<<10) // 128 KiB
	wire, err := proto.Marshal(&pb.WriteRequest{RequestId: "r", Chunk: chunk, End: true})
	if err != nil {
		t.Fatal(err)
	}

	data := frames(wire)
	var m writeMessage
	if err := m.UnmarshalBuffers(data, pool); err != nil {
		t.Fatal(err)
	}
	data.Free() // as gRPC does once Unmarshal returned
	if m.RequestId != "r" || !m.End || !bytes.Equal(m.Chunk, chunk) {
		t.Fatalf("decoded %q end=%v, %d chunk bytes", m.RequestId, m.End, len(m.Chunk))
	}
	if pool.got != pool.put+1 {
		t.Fatalf("pool: %d out, %d back; want the message holding one", pool.got, pool.put)
	}
	release := m.lend()
	if pool.got != pool.put+1 {
		t.Fatal("lend gave the buffer back")
	}
	release()
	if pool.got != pool.put {
		t.Fatalf("pool: %d out, %d back after release", pool.got, pool.put)
	}

	for name, b := range map[string][]byte{
		"no chunk": mustMarshal(t, &pb.WriteRequest{RequestId: "r", End: true}),
		"refused":  append(bytes.Clone(wire[:len(wire)-1]), 0x80), // a truncated varint
	} {
		data := frames(b)
		var m writeMessage
		err := m.UnmarshalBuffers(data, pool)
		data.Free()
		if (err != nil) != (name == "refused") {
			t.Fatalf("%s: %v", name, err)
		}
		m.lend()()
		if pool.got != pool.put {
			t.Fatalf("%s: pool: %d out, %d back", name, pool.got, pool.put)
		}
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
