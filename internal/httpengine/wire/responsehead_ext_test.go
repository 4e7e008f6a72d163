package wire_test

import (
	"bufio"
	"errors"
	"io"
	"strings"
	"testing"
	"time"

	"github.com/httpgateway/httpgateway/internal/httpengine/wire"
	"github.com/httpgateway/httpgateway/internal/nodeerr"
)

func readHead(s string, opts wire.ParseOptions) (*wire.ResponseHead, error) {
	return wire.ReadResponseHead(bufio.NewReader(strings.NewReader(s)), opts)
}

func wantCode(t *testing.T, err error, code string) {
	t.Helper()
	if code == "" {
		if err != nil {
			t.Fatalf("unexpected error: %v", err)
		}
		return
	}
	if err == nil {
		t.Fatalf("no error, want %s", code)
	}
	if got := nodeerr.Code(err); got != code {
		t.Fatalf("error %v: code %q, want %q", err, got, code)
	}
	if !errors.Is(err, nodeerr.New(code, "")) {
		t.Fatalf("errors.Is(%v, %s) = false", err, code)
	}
}

func TestReadResponseHeadGood(t *testing.T) {
	tests := []struct {
		name     string
		in       string
		insecure bool
		check    func(t *testing.T, h *wire.ResponseHead)
	}{
		{
			name: "basic",
			in:   "HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: 5\r\nX-Empty:\r\nX-Trim: \t a b \t\r\n\r\nhello",
			check: func(t *testing.T, h *wire.ResponseHead) {
				if h.Major != 1 || h.Minor != 1 || h.StatusCode != 200 || h.StatusMessage != "OK" {
					t.Fatalf("status line %+v", h)
				}
				want := []wire.Header{{"Content-Type", "text/plain"}, {"Content-Length", "5"}, {"X-Empty", ""}, {"X-Trim", "a b"}}
				if !equalHeaders(h.RawHeaders, want) {
					t.Fatalf("RawHeaders %q, want %q", h.RawHeaders, want)
				}
				if h.ContentLength != 5 || h.Chunked || h.ConnectionClose || h.HeadersCount != 4 {
					t.Fatalf("flags %+v", h)
				}
			},
		},
		{name: "leading CRLF skipped", in: "\r\n\r\nHTTP/1.1 204 No Content\r\n\r\n", check: status(204, "No Content")},
		{name: "no reason phrase", in: "HTTP/1.1 200\r\n\r\n", check: status(200, "")},
		{name: "empty reason phrase", in: "HTTP/1.1 200 \r\n\r\n", check: status(200, "")},
		{name: "reason with any bytes", in: "HTTP/1.1 404 Not \x01 Found\r\n\r\n", check: status(404, "Not \x01 Found")},
		{name: "latin1 decoded", in: "HTTP/1.1 200 \xe9\r\nX: caf\xe9\r\n\r\n", check: func(t *testing.T, h *wire.ResponseHead) {
			if h.StatusMessage != "é" || h.RawHeaders[0].Value != "café" {
				t.Fatalf("got %q %q", h.StatusMessage, h.RawHeaders[0].Value)
			}
		}},
		{name: "HTTP/1.0 closes by default", in: "HTTP/1.0 200 OK\r\n\r\n", check: func(t *testing.T, h *wire.ResponseHead) {
			if !h.ConnectionClose {
				t.Fatal("HTTP/1.0 without keep-alive must close")
			}
		}},
		{name: "HTTP/1.0 keep-alive with timeout", in: "HTTP/1.0 200 OK\r\nConnection: Keep-Alive\r\nKeep-Alive: timeout=5, max=10\r\n\r\n", check: func(t *testing.T, h *wire.ResponseHead) {
			if h.ConnectionClose || h.KeepAliveTimeout != 5*time.Second {
				t.Fatalf("close=%v timeout=%v", h.ConnectionClose, h.KeepAliveTimeout)
			}
		}},
		{name: "keep-alive hint must lead", in: "HTTP/1.1 200 OK\r\nKeep-Alive: max=5, timeout=5\r\n\r\n", check: func(t *testing.T, h *wire.ResponseHead) {
			if h.KeepAliveTimeout != 0 {
				t.Fatalf("timeout=%v", h.KeepAliveTimeout)
			}
		}},
		{name: "connection close token list", in: "HTTP/1.1 200 OK\r\nConnection: foo, CLOSE\r\n\r\n", check: func(t *testing.T, h *wire.ResponseHead) {
			if !h.ConnectionClose {
				t.Fatal("want close")
			}
		}},
		{name: "closed is not close", in: "HTTP/1.1 200 OK\r\nConnection: closed\r\n\r\n", check: func(t *testing.T, h *wire.ResponseHead) {
			if h.ConnectionClose {
				t.Fatal("closed is not close")
			}
		}},
		{name: "upgrade", in: "HTTP/1.1 101 Switching Protocols\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n\r\n", check: func(t *testing.T, h *wire.ResponseHead) {
			if !h.Upgrade || !h.UpgradeHeader {
				t.Fatalf("upgrade=%v header=%v", h.Upgrade, h.UpgradeHeader)
			}
		}},
		{name: "chunked final", in: "HTTP/1.1 200 OK\r\nTransfer-Encoding: gzip, Chunked\r\n\r\n", check: func(t *testing.T, h *wire.ResponseHead) {
			if !h.Chunked || !h.TransferEncoding {
				t.Fatal("want chunked")
			}
		}},
		{name: "chunked not final", in: "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\nTransfer-Encoding: gzip\r\n\r\n", check: func(t *testing.T, h *wire.ResponseHead) {
			if h.Chunked || !h.TransferEncoding {
				t.Fatal("chunked is not final")
			}
		}},
		{name: "content-length trailing OWS", in: "HTTP/1.1 200 OK\r\nContent-Length: 007 \t\r\n\r\n", check: func(t *testing.T, h *wire.ResponseHead) {
			if h.ContentLength != 7 {
				t.Fatalf("ContentLength %d", h.ContentLength)
			}
		}},
		{name: "RTSP protocol accepted as llhttp does", in: "RTSP/1.0 200 OK\r\n\r\n", check: status(200, "OK")},
		{name: "insecure: bare LF", insecure: true, in: "HTTP/1.1 200 OK\nA: b\n\n", check: func(t *testing.T, h *wire.ResponseHead) {
			if len(h.RawHeaders) != 1 || h.RawHeaders[0].Value != "b" {
				t.Fatalf("%q", h.RawHeaders)
			}
		}},
		{name: "insecure: obs-fold joined", insecure: true, in: "HTTP/1.1 200 OK\r\nA: b\r\n  c \r\nD: e\r\n\r\n", check: func(t *testing.T, h *wire.ResponseHead) {
			want := []wire.Header{{"A", "b  c"}, {"D", "e"}}
			if !equalHeaders(h.RawHeaders, want) {
				t.Fatalf("%q", h.RawHeaders)
			}
		}},
		{name: "insecure: control char in value", insecure: true, in: "HTTP/1.1 200 OK\r\nA: b\x01c\r\n\r\n", check: func(t *testing.T, h *wire.ResponseHead) {
			if h.RawHeaders[0].Value != "b\x01c" {
				t.Fatalf("%q", h.RawHeaders)
			}
		}},
		{name: "insecure: TE with CL, TE wins", insecure: true, in: "HTTP/1.1 200 OK\r\nContent-Length: 5\r\nTransfer-Encoding: chunked\r\n\r\n", check: func(t *testing.T, h *wire.ResponseHead) {
			if f := wire.BodyFraming("GET", h); f.Kind != wire.FramingChunked {
				t.Fatalf("framing %v", f.Kind)
			}
		}},
		{name: "insecure: any version", insecure: true, in: "HTTP/3.7 200 OK\r\n\r\n", check: status(200, "OK")},
		{name: "insecure: space before special colon", insecure: true, in: "HTTP/1.1 200 OK\r\nContent-Length : 3\r\n\r\n", check: func(t *testing.T, h *wire.ResponseHead) {
			if h.ContentLength != 3 {
				t.Fatalf("ContentLength %d", h.ContentLength)
			}
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h, err := readHead(tt.in, wire.ParseOptions{Insecure: tt.insecure})
			if err != nil {
				t.Fatalf("ReadResponseHead: %v", err)
			}
			tt.check(t, h)
		})
	}
}

func status(code int, msg string) func(*testing.T, *wire.ResponseHead) {
	return func(t *testing.T, h *wire.ResponseHead) {
		t.Helper()
		if h.StatusCode != code || h.StatusMessage != msg {
			t.Fatalf("status %d %q, want %d %q", h.StatusCode, h.StatusMessage, code, msg)
		}
	}
}

func equalHeaders(a, b []wire.Header) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}

func TestReadResponseHeadStrictErrors(t *testing.T) {
	tests := []struct {
		name string
		in   string
		code string
		// relaxed is the outcome under Insecure: "" accepted, else a code.
		relaxed string
	}{
		{name: "not HTTP", in: "HTTX/1.1 200 OK\r\n\r\n", code: nodeerr.HPE_INVALID_CONSTANT, relaxed: nodeerr.HPE_INVALID_CONSTANT},
		{name: "two-digit major", in: "HTTP/11.1 200 OK\r\n\r\n", code: nodeerr.HPE_INVALID_VERSION, relaxed: nodeerr.HPE_INVALID_VERSION},
		{name: "unknown version", in: "HTTP/1.2 200 OK\r\n\r\n", code: nodeerr.HPE_INVALID_VERSION},
		{name: "no space after version", in: "HTTP/1.1\t200 OK\r\n\r\n", code: nodeerr.HPE_INVALID_VERSION, relaxed: nodeerr.HPE_INVALID_VERSION},
		{name: "two-digit status", in: "HTTP/1.1 20 OK\r\n\r\n", code: nodeerr.HPE_INVALID_STATUS, relaxed: nodeerr.HPE_INVALID_STATUS},
		{name: "four-digit status", in: "HTTP/1.1 2000 OK\r\n\r\n", code: nodeerr.HPE_INVALID_STATUS, relaxed: nodeerr.HPE_INVALID_STATUS},
		{name: "status not digits", in: "HTTP/1.1 2x0 OK\r\n\r\n", code: nodeerr.HPE_INVALID_STATUS, relaxed: nodeerr.HPE_INVALID_STATUS},
		{name: "LF-only status line", in: "HTTP/1.1 200 OK\nA: b\r\n\r\n", code: nodeerr.HPE_CR_EXPECTED},
		{name: "LF-only header line", in: "HTTP/1.1 200 OK\r\nA: b\n\r\n", code: nodeerr.HPE_CR_EXPECTED},
		{name: "LF-only final line", in: "HTTP/1.1 200 OK\r\nA: b\r\n\n", code: nodeerr.HPE_INVALID_HEADER_TOKEN},
		{name: "bare CR in value", in: "HTTP/1.1 200 OK\r\nA: b\rc\r\n\r\n", code: nodeerr.HPE_LF_EXPECTED, relaxed: nodeerr.HPE_LF_EXPECTED},
		{name: "bare CR in status", in: "HTTP/1.1 200 O\rK\r\n\r\n", code: nodeerr.HPE_STRICT, relaxed: nodeerr.HPE_STRICT},
		{name: "obs-fold", in: "HTTP/1.1 200 OK\r\nA: b\r\n c\r\n\r\n", code: nodeerr.HPE_INVALID_HEADER_TOKEN},
		{name: "obs-fold tab", in: "HTTP/1.1 200 OK\r\nA: b\r\n\tc\r\n\r\n", code: nodeerr.HPE_INVALID_HEADER_TOKEN},
		{name: "space before first header", in: "HTTP/1.1 200 OK\r\n A: b\r\n\r\n", code: nodeerr.HPE_UNEXPECTED_SPACE},
		{name: "space before colon", in: "HTTP/1.1 200 OK\r\nX-A : b\r\n\r\n", code: nodeerr.HPE_INVALID_HEADER_TOKEN, relaxed: nodeerr.HPE_INVALID_HEADER_TOKEN},
		{name: "space before special colon", in: "HTTP/1.1 200 OK\r\nContent-Length : 1\r\n\r\n", code: nodeerr.HPE_INVALID_HEADER_TOKEN},
		{name: "empty name", in: "HTTP/1.1 200 OK\r\n: b\r\n\r\n", code: nodeerr.HPE_INVALID_HEADER_TOKEN, relaxed: nodeerr.HPE_INVALID_HEADER_TOKEN},
		{name: "non-token name", in: "HTTP/1.1 200 OK\r\nA(b): c\r\n\r\n", code: nodeerr.HPE_INVALID_HEADER_TOKEN, relaxed: nodeerr.HPE_INVALID_HEADER_TOKEN},
		{name: "no colon", in: "HTTP/1.1 200 OK\r\nAbc\r\n\r\n", code: nodeerr.HPE_INVALID_HEADER_TOKEN, relaxed: nodeerr.HPE_INVALID_HEADER_TOKEN},
		{name: "NUL in value", in: "HTTP/1.1 200 OK\r\nA: b\x00c\r\n\r\n", code: nodeerr.HPE_INVALID_HEADER_TOKEN},
		{name: "DEL in value", in: "HTTP/1.1 200 OK\r\nA: b\x7fc\r\n\r\n", code: nodeerr.HPE_INVALID_HEADER_TOKEN},
		{name: "TE after CL", in: "HTTP/1.1 200 OK\r\nContent-Length: 1\r\nTransfer-Encoding: chunked\r\n\r\n", code: nodeerr.HPE_INVALID_TRANSFER_ENCODING},
		{name: "CL after TE", in: "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\nContent-Length: 1\r\n\r\n", code: nodeerr.HPE_INVALID_CONTENT_LENGTH},
		{name: "duplicate CL differing", in: "HTTP/1.1 200 OK\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\n", code: nodeerr.HPE_UNEXPECTED_CONTENT_LENGTH, relaxed: nodeerr.HPE_UNEXPECTED_CONTENT_LENGTH},
		{name: "duplicate CL equal", in: "HTTP/1.1 200 OK\r\nContent-Length: 1\r\nContent-Length: 1\r\n\r\n", code: nodeerr.HPE_UNEXPECTED_CONTENT_LENGTH, relaxed: nodeerr.HPE_UNEXPECTED_CONTENT_LENGTH},
		{name: "CL list", in: "HTTP/1.1 200 OK\r\nContent-Length: 1, 1\r\n\r\n", code: nodeerr.HPE_INVALID_CONTENT_LENGTH, relaxed: nodeerr.HPE_INVALID_CONTENT_LENGTH},
		{name: "CL negative", in: "HTTP/1.1 200 OK\r\nContent-Length: -1\r\n\r\n", code: nodeerr.HPE_INVALID_CONTENT_LENGTH, relaxed: nodeerr.HPE_INVALID_CONTENT_LENGTH},
		{name: "CL plus sign", in: "HTTP/1.1 200 OK\r\nContent-Length: +1\r\n\r\n", code: nodeerr.HPE_INVALID_CONTENT_LENGTH, relaxed: nodeerr.HPE_INVALID_CONTENT_LENGTH},
		{name: "CL empty", in: "HTTP/1.1 200 OK\r\nContent-Length: \r\n\r\n", code: nodeerr.HPE_INVALID_CONTENT_LENGTH, relaxed: nodeerr.HPE_INVALID_CONTENT_LENGTH},
		{name: "CL overflow", in: "HTTP/1.1 200 OK\r\nContent-Length: 9223372036854775808\r\n\r\n", code: nodeerr.HPE_INVALID_CONTENT_LENGTH, relaxed: nodeerr.HPE_INVALID_CONTENT_LENGTH},
		{name: "TE empty", in: "HTTP/1.1 200 OK\r\nTransfer-Encoding:\r\n\r\n", code: nodeerr.HPE_INVALID_TRANSFER_ENCODING, relaxed: nodeerr.HPE_INVALID_TRANSFER_ENCODING},
		{name: "chunked twice", in: "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked, chunked\r\n\r\n", code: nodeerr.HPE_INVALID_TRANSFER_ENCODING},
		{name: "chunked twice across lines", in: "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\nTransfer-Encoding: chunked\r\n\r\n", code: nodeerr.HPE_INVALID_TRANSFER_ENCODING},
		{name: "CR CR", in: "HTTP/1.1 200 OK\r\n\r\r\n\r\n", code: nodeerr.HPE_STRICT, relaxed: nodeerr.HPE_STRICT},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := readHead(tt.in, wire.ParseOptions{})
			wantCode(t, err, tt.code)
			if !strings.HasPrefix(err.Error(), "Parse Error: ") {
				t.Fatalf("message %q lacks Node's prefix", err.Error())
			}
			_, err = readHead(tt.in, wire.ParseOptions{Insecure: true})
			wantCode(t, err, tt.relaxed)
		})
	}
}

func TestReadResponseHeadLimits(t *testing.T) {
	big := strings.Repeat("a", 100)
	tests := []struct {
		name string
		in   string
		opts wire.ParseOptions
		code string
	}{
		// Node counts status message + names + values and fails at >= limit.
		{name: "just under", in: "HTTP/1.1 200 OK\r\nAb: " + strings.Repeat("x", 6) + "\r\n\r\n", opts: wire.ParseOptions{MaxHeaderSize: 11}},
		{name: "at limit", in: "HTTP/1.1 200 OK\r\nAb: " + strings.Repeat("x", 7) + "\r\n\r\n", opts: wire.ParseOptions{MaxHeaderSize: 11}, code: nodeerr.HPE_HEADER_OVERFLOW},
		{name: "status message counts", in: "HTTP/1.1 200 " + big + "\r\n\r\n", opts: wire.ParseOptions{MaxHeaderSize: 100}, code: nodeerr.HPE_HEADER_OVERFLOW},
		{name: "default 16KiB", in: "HTTP/1.1 200 OK\r\nA: " + strings.Repeat("x", 16*1024) + "\r\n\r\n", code: nodeerr.HPE_HEADER_OVERFLOW},
		{name: "raw backstop: whitespace padding", in: "HTTP/1.1 200 OK\r\nA:" + strings.Repeat(" ", 6000) + "b\r\n\r\n", opts: wire.ParseOptions{MaxHeaderSize: 1000}, code: nodeerr.HPE_HEADER_OVERFLOW},
		{name: "no end of head", in: "HTTP/1.1 200 OK\r\nA: " + strings.Repeat("x", 70*1024), code: nodeerr.HPE_HEADER_OVERFLOW},
		{name: "EOF in head", in: "HTTP/1.1 200 OK\r\nA: b\r\n", code: nodeerr.ECONNRESET},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			// Both the buffered fast path and the line-by-line slow path.
			for _, size := range []int{16, 64 * 1024} {
				_, err := wire.ReadResponseHead(bufio.NewReaderSize(strings.NewReader(tt.in), size), tt.opts)
				wantCode(t, err, tt.code)
			}
		})
	}
}

func TestReadResponseHeadHangUp(t *testing.T) {
	_, err := readHead("", wire.ParseOptions{})
	wantCode(t, err, nodeerr.ECONNRESET)
	if !errors.Is(err, io.EOF) || err.Error() != "socket hang up (ECONNRESET)" {
		t.Fatalf("empty stream: %v", err)
	}
	_, err = readHead("HTTP/1.1 200", wire.ParseOptions{})
	if !errors.Is(err, io.ErrUnexpectedEOF) || errors.Is(err, io.EOF) {
		t.Fatalf("partial head: %v", err)
	}
}

func TestReadResponseHeadCounts(t *testing.T) {
	var sb strings.Builder
	sb.WriteString("HTTP/1.1 200 OK\r\n")
	for i := 0; i < 5; i++ {
		sb.WriteString("X-N: v\r\n")
	}
	sb.WriteString("\r\n")
	tests := []struct {
		name string
		max  int
		want int
	}{
		{name: "default", max: 0, want: 5},
		{name: "limited", max: 3, want: 3},
		{name: "unlimited", max: -1, want: 5},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h, err := readHead(sb.String(), wire.ParseOptions{MaxHeadersCount: tt.max})
			if err != nil {
				t.Fatal(err)
			}
			if len(h.RawHeaders) != 5 || h.HeadersCount != tt.want {
				t.Fatalf("raw %d count %d, want 5 and %d", len(h.RawHeaders), h.HeadersCount, tt.want)
			}
			if m := h.Merged(false); len(m[0].Values) != tt.want {
				t.Fatalf("merged %d values, want %d", len(m[0].Values), tt.want)
			}
		})
	}
}

func TestReadResponseHeadSequence(t *testing.T) {
	// 1xx heads then the final one, each counted on its own.
	in := "HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 103 Early Hints\r\nLink: </s.css>\r\n\r\nHTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok"
	br := bufio.NewReader(strings.NewReader(in))
	var codes []int
	for {
		h, err := wire.ReadResponseHead(br, wire.ParseOptions{MaxHeaderSize: 30})
		if err != nil {
			t.Fatal(err)
		}
		codes = append(codes, h.StatusCode)
		if f := wire.BodyFraming("GET", h); h.StatusCode/100 != 1 {
			b := wire.NewBodyReader(br, f, wire.ParseOptions{})
			body, err := io.ReadAll(b)
			if err != nil || string(body) != "ok" {
				t.Fatalf("body %q, %v", body, err)
			}
			break
		} else if f.Kind != wire.FramingNone {
			t.Fatalf("1xx framing %v", f.Kind)
		}
	}
	if len(codes) != 3 || codes[0] != 100 || codes[1] != 103 || codes[2] != 200 {
		t.Fatalf("codes %v", codes)
	}
}

func TestParseResponseHeadAndKeepAlive(t *testing.T) {
	tests := []struct {
		name      string
		in        string
		method    string
		keepAlive bool
	}{
		{name: "1.1 length", in: "HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n", method: "GET", keepAlive: true},
		{name: "1.1 until close", in: "HTTP/1.1 200 OK\r\n\r\n", method: "GET", keepAlive: false},
		{name: "1.1 HEAD without length", in: "HTTP/1.1 200 OK\r\n\r\n", method: "HEAD", keepAlive: true},
		{name: "1.1 close", in: "HTTP/1.1 200 OK\r\nConnection: close\r\nContent-Length: 0\r\n\r\n", method: "GET", keepAlive: false},
		{name: "1.1 proxy-connection close", in: "HTTP/1.1 200 OK\r\nProxy-Connection: close\r\nContent-Length: 0\r\n\r\n", method: "GET", keepAlive: false},
		{name: "1.0 keep-alive", in: "HTTP/1.0 200 OK\r\nConnection: keep-alive\r\nContent-Length: 0\r\n\r\n", method: "GET", keepAlive: true},
		{name: "1.0 default", in: "HTTP/1.0 200 OK\r\nContent-Length: 0\r\n\r\n", method: "GET", keepAlive: false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h, err := wire.ParseResponseHead([]byte(tt.in+"trailing bytes ignored"), wire.ParseOptions{})
			if err != nil {
				t.Fatal(err)
			}
			if got := h.KeepAlive(wire.BodyFraming(tt.method, h)); got != tt.keepAlive {
				t.Fatalf("KeepAlive = %v, want %v", got, tt.keepAlive)
			}
		})
	}
}
