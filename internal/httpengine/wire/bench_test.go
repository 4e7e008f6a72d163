package wire_test

import (
	"bufio"
	"bytes"
	"io"
	"strings"
	"testing"

	"github.com/httpgateway/httpgateway/internal/httpengine/wire"
)

const benchHead = "HTTP/1.1 200 OK\r\n" +
	"Date: Sat, 21 Nov 2026 05:00:00 GMT\r\n" +
	"Content-Type: application/json; charset=utf-8\r\n" +
	"Content-Length: 1234\r\n" +
	"Connection: keep-alive\r\n" +
	"Keep-Alive: timeout=5\r\n" +
	"Cache-Control: private, max-age=0\r\n" +
	"ETag: W/\"4d2-abcdef\"\r\n" +
	"Vary: Accept-Encoding\r\n" +
	"Server: nginx\r\n" +
	"Set-Cookie: session=abc; Path=/; HttpOnly\r\n" +
	"X-Request-Id: 6f1c2e7a-1b2c-4d3e-8f90-123456789abc\r\n" +
	"\r\n"

func BenchmarkReadResponseHead(b *testing.B) {
	r := strings.NewReader(benchHead)
	br := bufio.NewReaderSize(r, 4096)
	b.SetBytes(int64(len(benchHead)))
	b.ReportAllocs()
	for b.Loop() {
		r.Reset(benchHead)
		br.Reset(r)
		h, err := wire.ReadResponseHead(br, wire.ParseOptions{})
		if err != nil || len(h.RawHeaders) != 11 {
			b.Fatal(err)
		}
	}
}

func BenchmarkMergeHeaders(b *testing.B) {
	h, err := readHead(benchHead, wire.ParseOptions{})
	if err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	for b.Loop() {
		_ = h.Merged(false)
	}
}

func chunkedBody(total, chunk int) []byte {
	var out []byte
	data := bytes.Repeat([]byte("x"), chunk)
	for total > 0 {
		n := min(chunk, total)
		out = wire.AppendChunkHeader(out, n)
		out = append(out, data[:n]...)
		out = append(out, wire.CRLF...)
		total -= n
	}
	out, _ = wire.AppendLastChunk(out, nil)
	return out
}

// BenchmarkChunkedBody decodes a 64 KiB body sent as 4 KiB chunks, with
// Next (zero copy) and with Read into a caller buffer.
func BenchmarkChunkedBody(b *testing.B) {
	body := chunkedBody(64<<10, 4<<10)
	for _, mode := range []string{"Next", "Read"} {
		b.Run(mode, func(b *testing.B) {
			r := bytes.NewReader(body)
			br := bufio.NewReaderSize(r, 32<<10)
			buf := make([]byte, 16<<10)
			b.SetBytes(64 << 10)
			b.ReportAllocs()
			for b.Loop() {
				r.Reset(body)
				br.Reset(r)
				br := wire.NewBodyReader(br, wire.Framing{Kind: wire.FramingChunked}, wire.ParseOptions{})
				var n int
				for {
					var err error
					if mode == "Next" {
						var p []byte
						p, err = br.Next(0)
						n += len(p)
					} else {
						var k int
						k, err = br.Read(buf)
						n += k
					}
					if err == io.EOF {
						break
					}
					if err != nil {
						b.Fatal(err)
					}
				}
				if n != 64<<10 {
					b.Fatalf("read %d", n)
				}
			}
		})
	}
}

func BenchmarkAppendRequestHead(b *testing.B) {
	headers := []wire.Header{
		{"Host", "api.example.com"},
		{"User-Agent", "httpgateway/1.0"},
		{"Accept", "application/json"},
		{"Content-Type", "application/json"},
		{"Authorization", "Bearer abcdefghijklmnopqrstuvwxyz0123456789"},
		{"Connection", "keep-alive"},
		{"Transfer-Encoding", "chunked"},
	}
	dst := make([]byte, 0, 1024)
	b.ReportAllocs()
	for b.Loop() {
		var err error
		dst, err = wire.AppendRequestHead(dst[:0], "POST", "/v1/things?limit=10", headers)
		if err != nil {
			b.Fatal(err)
		}
	}
	b.SetBytes(int64(len(dst)))
}
