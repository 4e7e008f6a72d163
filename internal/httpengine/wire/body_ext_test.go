package wire_test

import (
	"bufio"
	"errors"
	"io"
	"os"
	"strings"
	"testing"

	"github.com/httpgateway/httpgateway/internal/httpengine/wire"
	"github.com/httpgateway/httpgateway/internal/nodeerr"
)

func TestBodyFraming(t *testing.T) {
	tests := []struct {
		name   string
		method string
		head   string
		want   wire.Framing
	}{
		{name: "HEAD", method: "HEAD", head: "HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\n", want: wire.Framing{Kind: wire.FramingNone}},
		{name: "100", method: "GET", head: "HTTP/1.1 100 Continue\r\n\r\n", want: wire.Framing{Kind: wire.FramingNone}},
		{name: "101", method: "GET", head: "HTTP/1.1 101 Switching\r\nConnection: upgrade\r\nUpgrade: x\r\n\r\n", want: wire.Framing{Kind: wire.FramingNone}},
		{name: "204 with length", method: "GET", head: "HTTP/1.1 204 No Content\r\nContent-Length: 10\r\n\r\n", want: wire.Framing{Kind: wire.FramingNone}},
		{name: "304 chunked", method: "GET", head: "HTTP/1.1 304 Not Modified\r\nTransfer-Encoding: chunked\r\n\r\n", want: wire.Framing{Kind: wire.FramingNone}},
		{name: "CONNECT 200", method: "CONNECT", head: "HTTP/1.1 200 OK\r\n\r\n", want: wire.Framing{Kind: wire.FramingNone}},
		{name: "CONNECT 407", method: "CONNECT", head: "HTTP/1.1 407 Auth\r\nContent-Length: 3\r\n\r\n", want: wire.Framing{Kind: wire.FramingLength, Length: 3}},
		{name: "chunked", method: "GET", head: "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n", want: wire.Framing{Kind: wire.FramingChunked}},
		{name: "gzip final: until close", method: "GET", head: "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked, gzip\r\n\r\n", want: wire.Framing{Kind: wire.FramingUntilClose}},
		{name: "length", method: "POST", head: "HTTP/1.1 200 OK\r\nContent-Length: 42\r\n\r\n", want: wire.Framing{Kind: wire.FramingLength, Length: 42}},
		{name: "length zero", method: "GET", head: "HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n", want: wire.Framing{Kind: wire.FramingLength}},
		{name: "nothing: until close", method: "GET", head: "HTTP/1.1 200 OK\r\n\r\n", want: wire.Framing{Kind: wire.FramingUntilClose}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h, err := readHead(tt.head, wire.ParseOptions{})
			if err != nil {
				t.Fatal(err)
			}
			if got := wire.BodyFraming(tt.method, h); got != tt.want {
				t.Fatalf("BodyFraming = %+v, want %+v", got, tt.want)
			}
		})
	}
}

// readAllBoth reads a body with Read and, separately, with Next, and
// requires both to agree.
func readAllBoth(t *testing.T, in string, f wire.Framing, opts wire.ParseOptions) (body string, trailers []wire.Header, rest string, err error) {
	t.Helper()
	br := bufio.NewReaderSize(strings.NewReader(in), 16)
	b := wire.NewBodyReader(br, f, opts)
	var sb strings.Builder
	buf := make([]byte, 5)
	for {
		var n int
		n, err = b.Read(buf)
		sb.WriteString(string(buf[:n]))
		if err != nil {
			break
		}
	}
	if (err == io.EOF) != b.Complete() {
		t.Fatalf("Read: err %v but Complete %v", err, b.Complete())
	}
	restBytes, _ := io.ReadAll(br)

	br2 := bufio.NewReaderSize(strings.NewReader(in), 16)
	b2 := wire.NewBodyReader(br2, f, opts)
	var sb2 strings.Builder
	var err2 error
	for {
		var p []byte
		p, err2 = b2.Next(3)
		sb2.Write(p)
		if err2 != nil {
			break
		}
	}
	if sb.String() != sb2.String() || nodeerr.Code(err) != nodeerr.Code(err2) || (err == io.EOF) != (err2 == io.EOF) {
		t.Fatalf("Read gave %q %v; Next gave %q %v", sb.String(), err, sb2.String(), err2)
	}
	return sb.String(), b.Trailers(), string(restBytes), err
}

func TestBodyReader(t *testing.T) {
	chunked := wire.Framing{Kind: wire.FramingChunked}
	tests := []struct {
		name     string
		in       string
		f        wire.Framing
		insecure bool
		want     string
		trailers []wire.Header
		code     string // "" means io.EOF
		rest     string // what stays unread after a clean end
	}{
		{name: "length", in: "hello worldNEXT", f: wire.Framing{Kind: wire.FramingLength, Length: 11}, want: "hello world", rest: "NEXT"},
		{name: "length zero", in: "NEXT", f: wire.Framing{Kind: wire.FramingLength}, rest: "NEXT"},
		{name: "none", in: "NEXT", f: wire.Framing{Kind: wire.FramingNone}, rest: "NEXT"},
		{name: "until close", in: "all of it", f: wire.Framing{Kind: wire.FramingUntilClose}, want: "all of it"},
		{name: "until close empty", in: "", f: wire.Framing{Kind: wire.FramingUntilClose}},
		{name: "short length", in: "hello", f: wire.Framing{Kind: wire.FramingLength, Length: 11}, want: "hello", code: nodeerr.ECONNRESET},
		{name: "length, nothing", in: "", f: wire.Framing{Kind: wire.FramingLength, Length: 1}, code: nodeerr.ECONNRESET},
		{name: "chunked", in: "4\r\nWiki\r\n5\r\npedia\r\nE\r\n in\r\n\r\nchunks.\r\n0\r\n\r\nNEXT", f: chunked, want: "Wikipedia in\r\n\r\nchunks.", rest: "NEXT"},
		{name: "chunked extensions", in: "4;a=b;c;d=\"x;y\\\"z\"\r\nWiki\r\n0;last=1\r\n\r\n", f: chunked, want: "Wiki"},
		{name: "chunked trailers", in: "1\r\nx\r\n0\r\nX-Sum: abc \r\nx-two:2\r\n\r\nNEXT", f: chunked, want: "x", trailers: []wire.Header{{"X-Sum", "abc"}, {"x-two", "2"}}, rest: "NEXT"},
		{name: "chunked leading zeros", in: "0001\r\nx\r\n000\r\n\r\n", f: chunked, want: "x"},
		{name: "short chunk data", in: "a\r\n01234", f: chunked, want: "01234", code: nodeerr.ECONNRESET},
		{name: "short in size line", in: "1\r\nx\r\n1", f: chunked, want: "x", code: nodeerr.ECONNRESET},
		{name: "short before last chunk", in: "1\r\nx\r\n", f: chunked, want: "x", code: nodeerr.ECONNRESET},
		{name: "short after chunk data", in: "1\r\nx", f: chunked, want: "x", code: nodeerr.ECONNRESET},
		{name: "short after chunk CR", in: "1\r\nx\r", f: chunked, want: "x", code: nodeerr.ECONNRESET},
		{name: "short in trailers", in: "1\r\nx\r\n0\r\nA: b\r\n", f: chunked, want: "x", code: nodeerr.ECONNRESET},
		{name: "short: no final CRLF", in: "0\r\n", f: chunked, code: nodeerr.ECONNRESET},
		{name: "bad size", in: "x\r\n", f: chunked, code: nodeerr.HPE_INVALID_CHUNK_SIZE},
		{name: "negative size", in: "-1\r\n", f: chunked, code: nodeerr.HPE_INVALID_CHUNK_SIZE},
		{name: "size overflow", in: "8000000000000000\r\n", f: chunked, code: nodeerr.HPE_INVALID_CHUNK_SIZE},
		{name: "size max int64 ok until short", in: "7fffffffffffffff\r\n", f: chunked, code: nodeerr.ECONNRESET},
		{name: "space after size", in: "1 \r\nx\r\n0\r\n\r\n", f: chunked, code: nodeerr.HPE_INVALID_CHUNK_SIZE},
		{name: "insecure: space after size", in: "1 \t\r\nx\r\n0\r\n\r\n", f: chunked, insecure: true, want: "x"},
		{name: "LF-only size line", in: "1\nx\r\n0\r\n\r\n", f: chunked, code: nodeerr.HPE_CR_EXPECTED},
		{name: "insecure: LF-only everywhere", in: "1\nx\n0\n\n", f: chunked, insecure: true, want: "x"},
		{name: "CR without LF after size", in: "1\rx\r\n0\r\n\r\n", f: chunked, code: nodeerr.HPE_STRICT},
		{name: "no CRLF after data", in: "1\r\nxy\r\n0\r\n\r\n", f: chunked, want: "x", code: nodeerr.HPE_STRICT},
		{name: "insecure: no CRLF after data", in: "1\r\nx0\r\n\r\n", f: chunked, insecure: true, want: "x"},
		{name: "LF-only after data", in: "1\r\nx\n0\r\n\r\n", f: chunked, want: "x", code: nodeerr.HPE_CR_EXPECTED},
		{name: "ext: space before semicolon", in: "1 ;a\r\nx\r\n0\r\n\r\n", f: chunked, code: nodeerr.HPE_INVALID_CHUNK_SIZE},
		{name: "ext: space after semicolon", in: "1; a\r\nx\r\n0\r\n\r\n", f: chunked, code: nodeerr.HPE_STRICT},
		{name: "ext: empty before CR", in: "1;\r\nx\r\n0\r\n\r\n", f: chunked, code: nodeerr.HPE_STRICT},
		{name: "ext: bad name char", in: "1;a@b\r\nx\r\n0\r\n\r\n", f: chunked, code: nodeerr.HPE_STRICT},
		{name: "ext: bad value char", in: "1;a=b c\r\nx\r\n0\r\n\r\n", f: chunked, code: nodeerr.HPE_STRICT},
		{name: "ext: unterminated quote", in: "1;a=\"b\r\nx\r\n0\r\n\r\n", f: chunked, code: nodeerr.HPE_STRICT},
		{name: "ext: char after quote", in: "1;a=\"b\"c\r\nx\r\n0\r\n\r\n", f: chunked, code: nodeerr.HPE_STRICT},
		{name: "ext: per-chunk limit", in: "1;a=" + strings.Repeat("b", 16*1024) + "\r\nx\r\n0\r\n\r\n", f: chunked, code: nodeerr.HPE_CHUNK_EXTENSIONS_OVERFLOW},
		{name: "ext: just under the per-chunk limit", in: "4000;" + strings.Repeat("b", 16*1024-1) + "\r\n" + strings.Repeat("y", 0x4000) + "\r\n0\r\n\r\n", f: chunked, want: strings.Repeat("y", 0x4000)},
		{name: "ext: overhead across small chunks", in: strings.Repeat("1;"+strings.Repeat("e", 1000)+"\r\nx\r\n", 40) + "0\r\n\r\n", f: chunked, want: strings.Repeat("x", 16), code: nodeerr.HPE_CHUNK_EXTENSIONS_OVERFLOW},
		{name: "trailer: bad name", in: "0\r\nA b: c\r\n\r\n", f: chunked, code: nodeerr.HPE_INVALID_HEADER_TOKEN},
		{name: "trailer: obs-fold", in: "0\r\nA: b\r\n c\r\n\r\n", f: chunked, code: nodeerr.HPE_INVALID_HEADER_TOKEN},
		{name: "trailer: overflow", in: "0\r\nA: " + strings.Repeat("x", 300) + "\r\n\r\n", f: chunked, code: nodeerr.HPE_HEADER_OVERFLOW},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			opts := wire.ParseOptions{Insecure: tt.insecure}
			if strings.HasPrefix(tt.name, "trailer: overflow") {
				opts.MaxHeaderSize = 256
			}
			got, trailers, rest, err := readAllBoth(t, tt.in, tt.f, opts)
			if tt.code == "" {
				if err != io.EOF {
					t.Fatalf("err %v, want io.EOF", err)
				}
				if rest != tt.rest {
					t.Fatalf("left %q unread, want %q", rest, tt.rest)
				}
			} else {
				wantCode(t, err, tt.code)
				if errors.Is(err, io.EOF) {
					t.Fatal("a short body must never match io.EOF")
				}
				if tt.code == nodeerr.ECONNRESET && err.Error() != "aborted (ECONNRESET)" {
					t.Fatalf("message %q, want Node's \"aborted\"", err.Error())
				}
			}
			if got != tt.want {
				t.Fatalf("body %q, want %q", got, tt.want)
			}
			if !equalHeaders(trailers, tt.trailers) {
				t.Fatalf("trailers %q, want %q", trailers, tt.trailers)
			}
		})
	}
}

// errReader fails with err after its data.
type errReader struct {
	data string
	err  error
}

func (r *errReader) Read(p []byte) (int, error) {
	if r.data == "" {
		return 0, r.err
	}
	n := copy(p, r.data)
	r.data = r.data[n:]
	return n, nil
}

func TestBodyReaderReadErrorKeepsCause(t *testing.T) {
	br := bufio.NewReader(&errReader{data: "abc", err: os.ErrDeadlineExceeded})
	b := wire.NewBodyReader(br, wire.Framing{Kind: wire.FramingUntilClose}, wire.ParseOptions{})
	_, err := io.ReadAll(b)
	wantCode(t, err, nodeerr.ECONNRESET)
	if !errors.Is(err, os.ErrDeadlineExceeded) {
		t.Fatalf("cause lost: %v", err)
	}
	if b.Complete() {
		t.Fatal("Complete after a failed read")
	}
	// Sticky.
	if _, err2 := b.Read(make([]byte, 1)); err2 != err {
		t.Fatalf("second Read: %v", err2)
	}
}

func TestBodyReaderNextZeroCopy(t *testing.T) {
	in := "5\r\nhello\r\n0\r\n\r\n"
	br := bufio.NewReaderSize(strings.NewReader(in), 64)
	b := wire.NewBodyReader(br, wire.Framing{Kind: wire.FramingChunked}, wire.ParseOptions{})
	p, err := b.Next(0)
	if err != nil || string(p) != "hello" {
		t.Fatalf("Next = %q, %v", p, err)
	}
	if p, err = b.Next(0); err != io.EOF || p != nil {
		t.Fatalf("Next at end = %q, %v", p, err)
	}
	if !b.Complete() || b.Received() != 5 {
		t.Fatalf("Complete %v Received %d", b.Complete(), b.Received())
	}
}

func TestBodyReaderReset(t *testing.T) {
	in := "3\r\nabc\r\n0\r\nT: 1\r\n\r\nxyz"
	br := bufio.NewReader(strings.NewReader(in))
	var b wire.BodyReader
	b.Reset(br, wire.Framing{Kind: wire.FramingChunked}, wire.ParseOptions{})
	got, err := io.ReadAll(&b)
	if err != nil || string(got) != "abc" || len(b.Trailers()) != 1 {
		t.Fatalf("first body %q %v %q", got, err, b.Trailers())
	}
	b.Reset(br, wire.Framing{Kind: wire.FramingLength, Length: 3}, wire.ParseOptions{})
	got, err = io.ReadAll(&b)
	if err != nil || string(got) != "xyz" || b.Trailers() != nil || !b.Complete() {
		t.Fatalf("second body %q %v", got, err)
	}
}
