package wire_test

import (
	"bufio"
	"bytes"
	"errors"
	"io"
	"strings"
	"testing"

	"github.com/httpgateway/httpgateway/internal/httpengine/wire"
	"github.com/httpgateway/httpgateway/internal/nodeerr"
)

// fuzzMethods are the request methods a fuzz input may pick (first byte).
var fuzzMethods = []string{"GET", "HEAD", "CONNECT", "POST"}

// FuzzReadResponse parses heads (looping over 1xx like the engine) and the
// body after them, checking that nothing panics, every error is a
// *nodeerr.Error, accepted heads are clean, and body framing is honoured.
func FuzzReadResponse(f *testing.F) {
	f.Add([]byte("HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nhello"), uint8(0), false)
	f.Add([]byte("HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5;a=b\r\nhello\r\n0\r\nX: y\r\n\r\n"), uint8(0), false)
	f.Add([]byte("HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 204 No Content\r\n\r\n"), uint8(0), true)
	f.Add([]byte("HTTP/1.0 200 OK\nA: b\n  c\n\nbody"), uint8(3), true)
	f.Fuzz(func(t *testing.T, data []byte, sel uint8, insecure bool) {
		opts := wire.ParseOptions{Insecure: insecure}
		if sel&0x10 != 0 {
			opts.MaxHeaderSize = 64
		}
		if sel&0x20 != 0 {
			opts.MaxHeadersCount = 2
		}
		method := fuzzMethods[int(sel)%len(fuzzMethods)]
		br := bufio.NewReaderSize(bytes.NewReader(data), 16+int(sel&0x0f))
		var h *wire.ResponseHead
		for i := 0; ; i++ {
			var err error
			h, err = wire.ReadResponseHead(br, opts)
			if err != nil {
				// A head cut short is "socket hang up" and may wrap io.EOF
				// on purpose (nothing was read); only body errors must not.
				if nodeerr.Code(err) != nodeerr.ECONNRESET {
					requireNodeErr(t, err)
				}
				return
			}
			checkHead(t, h, opts)
			if h.StatusCode/100 != 1 || h.StatusCode == 101 || i > 8 {
				break
			}
		}
		fr := wire.BodyFraming(method, h)
		b := wire.NewBodyReader(br, fr, opts)
		var got int64
		buf := make([]byte, 1+int(sel>>6)*7)
		for n := 0; ; n++ {
			var k int
			var err error
			if n%2 == 0 {
				var p []byte
				p, err = b.Next(int(sel>>4) + 1)
				k = len(p)
			} else {
				k, err = b.Read(buf)
			}
			got += int64(k)
			if fr.Kind == wire.FramingLength && got > fr.Length {
				t.Fatalf("returned %d bytes, Content-Length %d", got, fr.Length)
			}
			if err == io.EOF {
				break
			}
			if err != nil {
				requireNodeErr(t, err)
				if b.Complete() {
					t.Fatal("Complete after an error")
				}
				return
			}
		}
		if !b.Complete() {
			t.Fatal("io.EOF without Complete")
		}
		switch fr.Kind {
		case wire.FramingLength:
			if got != fr.Length {
				t.Fatalf("complete after %d of %d bytes", got, fr.Length)
			}
		case wire.FramingNone:
			if got != 0 {
				t.Fatalf("body bytes %d for no-body framing", got)
			}
		}
		if got != b.Received() {
			t.Fatalf("Received() = %d, counted %d", b.Received(), got)
		}
		checkFields(t, b.Trailers(), opts)
	})
}

// FuzzChunked decodes a chunked body two ways (Next and Read with odd buffer
// sizes) and requires the same bytes and the same outcome.
func FuzzChunked(f *testing.F) {
	f.Add([]byte("5\r\nhello\r\n0\r\n\r\n"), false)
	f.Add([]byte("5;ext=\"q\\\"v\";x\r\nhello\r\n0\r\nTrailer: v\r\n\r\n"), false)
	f.Add([]byte("5 \nhello\n0\n\n"), true)
	f.Fuzz(func(t *testing.T, data []byte, insecure bool) {
		opts := wire.ParseOptions{Insecure: insecure, MaxHeaderSize: 256}
		decode := func(useNext bool, size int) ([]byte, *wire.BodyReader, int, error) {
			r := bytes.NewReader(data)
			br := bufio.NewReaderSize(r, 16)
			b := wire.NewBodyReader(br, wire.Framing{Kind: wire.FramingChunked}, opts)
			var out []byte
			buf := make([]byte, size)
			for {
				var p []byte
				var err error
				if useNext {
					p, err = b.Next(size)
				} else {
					var n int
					n, err = b.Read(buf)
					p = buf[:n]
				}
				out = append(out, p...)
				if len(out) > len(data) {
					t.Fatalf("decoded %d bytes from %d input bytes", len(out), len(data))
				}
				if err != nil {
					return out, b, len(data) - r.Len() - br.Buffered(), err
				}
			}
		}
		out1, b1, used1, err1 := decode(true, 3)
		out2, b2, used2, err2 := decode(false, 7)
		if (err1 == io.EOF) != (err2 == io.EOF) || nodeerr.Code(err1) != nodeerr.Code(err2) {
			t.Fatalf("Next gave %v, Read gave %v", err1, err2)
		}
		if err1 == io.EOF {
			if !bytes.Equal(out1, out2) {
				t.Fatalf("Next decoded %q, Read decoded %q", out1, out2)
			}
			if !b1.Complete() || !b2.Complete() {
				t.Fatal("io.EOF without Complete")
			}
			if used1 != used2 {
				t.Fatalf("consumed %d vs %d bytes", used1, used2)
			}
			checkFields(t, b1.Trailers(), opts)
			return
		}
		requireNodeErr(t, err1)
		if b1.Complete() || b2.Complete() {
			t.Fatal("Complete after an error")
		}
	})
}

func requireNodeErr(t *testing.T, err error) {
	t.Helper()
	var ne *nodeerr.Error
	if !errors.As(err, &ne) || ne.Code == "" {
		t.Fatalf("error %v (%T) is not a *nodeerr.Error", err, err)
	}
	if errors.Is(err, io.EOF) {
		t.Fatalf("error %v matches io.EOF", err)
	}
}

func checkHead(t *testing.T, h *wire.ResponseHead, opts wire.ParseOptions) {
	t.Helper()
	if h.StatusCode < 0 || h.StatusCode > 999 {
		t.Fatalf("status %d", h.StatusCode)
	}
	if h.HeadersCount > len(h.RawHeaders) {
		t.Fatalf("HeadersCount %d > %d", h.HeadersCount, len(h.RawHeaders))
	}
	if strings.ContainsAny(h.StatusMessage, "\r\n") {
		t.Fatalf("status message %q", h.StatusMessage)
	}
	checkFields(t, h.RawHeaders, opts)
	_ = h.Merged(true)
}

// checkFields: accepted fields never carry a line break (whatever the
// mode), names are tokens, and the block respects the size limits.
func checkFields(t *testing.T, hs []wire.Header, opts wire.ParseOptions) {
	t.Helper()
	limit := opts.MaxHeaderSize
	if limit <= 0 {
		limit = wire.DefaultMaxHeaderSize
	}
	total := 0
	for _, h := range hs {
		if err := wire.ValidateHeaderName(h.Name); err != nil {
			t.Fatalf("accepted name %q: %v", h.Name, err)
		}
		if strings.ContainsAny(h.Value, "\r\n") {
			t.Fatalf("accepted value %q", h.Value)
		}
		if !opts.Insecure {
			if err := wire.ValidateHeaderValue(h.Name, h.Value); err != nil {
				t.Fatalf("strict mode accepted value %q: %v", h.Value, err)
			}
		}
		total += len(h.Name) + len(h.Value)
	}
	// Values are UTF-8 re-encodings of latin1 (at most 2x).
	if total > 2*limit {
		t.Fatalf("fields hold %d bytes, limit %d", total, limit)
	}
}
