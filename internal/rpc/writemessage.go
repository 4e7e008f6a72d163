package rpc

import (
	"errors"
	"unicode/utf8"

	"google.golang.org/grpc/mem"
	"google.golang.org/protobuf/encoding/protowire"

	pb "github.com/httpgateway/httpgateway/gen/httpgateway/v1"
	"github.com/httpgateway/httpgateway/internal/bufpool"
)

// writeMessage is a received WriteRequest whose chunk may point into the
// buffer gRPC received it in instead of being a copy: a streamed upload
// moves every body byte through here, and a fresh 256 KiB slice per chunk
// (what proto.Unmarshal makes) was most of an upload's garbage. The
// chunk is then lent to the request (httpengine's WriteBorrowed), which
// gives the buffer back once the bytes are written.
//
// With the gateway's codec (internal/bufpool, installed by serve) gRPC
// calls UnmarshalBuffers. Under another codec (gRPC's own, in tests that
// serve without it) the embedded WriteRequest is the proto.Message that
// gets unmarshalled, holding a copy as usual, and lend has nothing to
// give back.
type writeMessage struct {
	pb.WriteRequest
	held mem.Buffer // what Chunk points into; nil when Chunk is a copy or empty
}

var _ bufpool.BufferUnmarshaler = (*writeMessage)(nil)

// UnmarshalBuffers decodes the message from one buffer holding it whole
// (data's, or a pooled copy when gRPC received it in frames) and keeps that
// buffer while Chunk points into it.
func (m *writeMessage) UnmarshalBuffers(data mem.BufferSlice, pool mem.BufferPool) error {
	buf := data.MaterializeToBuffer(pool)
	if err := decodeWriteRequest(buf.ReadOnlyData(), &m.WriteRequest); err != nil || len(m.Chunk) == 0 {
		buf.Free()
		return err
	}
	m.held = buf
	return nil
}

// lend returns the func that gives Chunk's buffer back, to be called once
// when nothing reads Chunk any more (a no-op when Chunk is a copy). The
// message lets go of the buffer: the func is its only way back.
func (m *writeMessage) lend() func() {
	buf := m.held
	if buf == nil {
		return func() {}
	}
	m.held = nil
	return buf.Free
}

// What proto.Unmarshal refuses: a proto3 string that is not UTF-8, a field
// number past the largest.
var (
	errInvalidUTF8 = errors.New("proto: string field contains invalid UTF-8")
	errFieldNumber = errors.New("proto: invalid field number")
)

// decodeWriteRequest is proto.Unmarshal for a WriteRequest (request_id = 1,
// chunk = 2, end = 3), except that Chunk aliases b. It accepts and refuses
// what proto.Unmarshal does (FuzzDecodeWriteRequest compares the two):
// the last occurrence of a field wins, a known field with another wire
// type is an unknown field, unknown fields are skipped (the gateway has no
// use for them).
func decodeWriteRequest(b []byte, m *pb.WriteRequest) error {
	m.Reset()
	for len(b) > 0 {
		num, typ, n := protowire.ConsumeTag(b)
		if n < 0 {
			return protowire.ParseError(n)
		}
		if num > protowire.MaxValidNumber {
			return errFieldNumber // ConsumeTag checks only the lower bound
		}
		b = b[n:]
		switch {
		case num == 1 && typ == protowire.BytesType:
			v, n := protowire.ConsumeBytes(b)
			if n < 0 {
				return protowire.ParseError(n)
			}
			if !utf8.Valid(v) {
				return errInvalidUTF8
			}
			m.RequestId, b = string(v), b[n:]
		case num == 2 && typ == protowire.BytesType:
			v, n := protowire.ConsumeBytes(b)
			if n < 0 {
				return protowire.ParseError(n)
			}
			m.Chunk, b = v, b[n:]
		case num == 3 && typ == protowire.VarintType:
			v, n := protowire.ConsumeVarint(b)
			if n < 0 {
				return protowire.ParseError(n)
			}
			m.End, b = protowire.DecodeBool(v), b[n:]
		default:
			n := protowire.ConsumeFieldValue(num, typ, b)
			if n < 0 {
				return protowire.ParseError(n)
			}
			b = b[n:]
		}
	}
	return nil
}
