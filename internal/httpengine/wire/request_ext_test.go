package wire_test

import (
	"bytes"
	"flag"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/httpgateway/httpgateway/internal/httpengine/wire"
	"github.com/httpgateway/httpgateway/internal/nodeerr"
)

var update = flag.Bool("update", false, "rewrite golden files in testdata/golden")

func TestValidateHeaderName(t *testing.T) {
	tests := []struct {
		name string
		in   string
		code string
	}{
		{name: "token", in: "X-Custom_1!#$%&'*+.^`|~"},
		{name: "empty", in: "", code: nodeerr.ERR_INVALID_HTTP_TOKEN},
		{name: "space", in: "X Y", code: nodeerr.ERR_INVALID_HTTP_TOKEN},
		{name: "colon", in: "X:", code: nodeerr.ERR_INVALID_HTTP_TOKEN},
		{name: "CRLF", in: "X\r\nY", code: nodeerr.ERR_INVALID_HTTP_TOKEN},
		{name: "non-ASCII", in: "é", code: nodeerr.ERR_INVALID_HTTP_TOKEN},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := wire.ValidateHeaderName(tt.in)
			wantCode(t, err, tt.code)
			if err != nil && err.Error() != `Header name must be a valid HTTP token ["`+tt.in+`"] (ERR_INVALID_HTTP_TOKEN)` {
				t.Fatalf("message %q", err.Error())
			}
		})
	}
}

func TestValidateHeaderValue(t *testing.T) {
	tests := []struct {
		name  string
		value string
		code  string
	}{
		{name: "plain", value: "text/html; charset=utf-8"},
		{name: "empty", value: ""},
		{name: "tab", value: "a\tb"},
		{name: "latin1", value: "café ÿ"},
		{name: "CR", value: "a\rb", code: nodeerr.ERR_INVALID_CHAR},
		{name: "LF", value: "a\nb", code: nodeerr.ERR_INVALID_CHAR},
		{name: "NUL", value: "a\x00b", code: nodeerr.ERR_INVALID_CHAR},
		{name: "other CTL", value: "a\x1bb", code: nodeerr.ERR_INVALID_CHAR},
		{name: "DEL", value: "a\x7fb", code: nodeerr.ERR_INVALID_CHAR},
		{name: "C1 control U+0085", value: "a\u0085b"},
		{name: "above latin1", value: "€", code: nodeerr.ERR_INVALID_CHAR},
		{name: "emoji", value: "😀", code: nodeerr.ERR_INVALID_CHAR},
		{name: "invalid UTF-8", value: "a\xe9b", code: nodeerr.ERR_INVALID_CHAR},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := wire.ValidateHeaderValue("X-H", tt.value)
			wantCode(t, err, tt.code)
			if err != nil && err.Error() != `Invalid character in header content ["X-H"] (ERR_INVALID_CHAR)` {
				t.Fatalf("message %q", err.Error())
			}
		})
	}
}

func TestValidateMethodAndPath(t *testing.T) {
	tests := []struct {
		name string
		fn   func(string) error
		in   string
		code string
		msg  string
	}{
		{name: "method ok", fn: wire.ValidateMethod, in: "PROPFIND"},
		{name: "method space", fn: wire.ValidateMethod, in: "GET /", code: nodeerr.ERR_INVALID_HTTP_TOKEN, msg: `Method must be a valid HTTP token ["GET /"]`},
		{name: "method empty", fn: wire.ValidateMethod, in: "", code: nodeerr.ERR_INVALID_HTTP_TOKEN, msg: `Method must be a valid HTTP token [""]`},
		{name: "path ok", fn: wire.ValidatePath, in: "/a/b?c=d&e=%20#f"},
		{name: "path latin1 ok", fn: wire.ValidatePath, in: "/café"},
		{name: "path space", fn: wire.ValidatePath, in: "/a b", code: nodeerr.ERR_UNESCAPED_CHARACTERS, msg: "Request path contains unescaped characters"},
		{name: "path CRLF", fn: wire.ValidatePath, in: "/a\r\nX: y", code: nodeerr.ERR_UNESCAPED_CHARACTERS, msg: "Request path contains unescaped characters"},
		{name: "path above latin1", fn: wire.ValidatePath, in: "/€", code: nodeerr.ERR_UNESCAPED_CHARACTERS, msg: "Request path contains unescaped characters"},
		{name: "path DEL is allowed by Node's regex", fn: wire.ValidatePath, in: "/\x7f"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := tt.fn(tt.in)
			wantCode(t, err, tt.code)
			if err != nil && nodeerr.As(err).Message != tt.msg {
				t.Fatalf("message %q, want %q", nodeerr.As(err).Message, tt.msg)
			}
		})
	}
}

func TestAppendRequestHeadGolden(t *testing.T) {
	tests := []struct {
		name    string
		method  string
		target  string
		headers []wire.Header
	}{
		{name: "get", method: "GET", target: "/", headers: []wire.Header{{"Host", "example.com"}, {"Connection", "keep-alive"}}},
		{name: "post-raw-casing-order", method: "POST", target: "/upload?x=1", headers: []wire.Header{
			{"host", "127.0.0.1:8080"}, {"X-Dup", "1"}, {"Transfer-Encoding", "chunked"}, {"x-dup", "2"}, {"X-Empty", ""},
		}},
		{name: "latin1", method: "GET", target: "/caf\u00e9", headers: []wire.Header{{"X-Name", "Zo\u00eb"}}},
		{name: "absolute-form", method: "GET", target: "http://example.com/a", headers: nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := wire.AppendRequestHead([]byte("prefix|"), tt.method, tt.target, tt.headers)
			if err != nil {
				t.Fatal(err)
			}
			if !bytes.HasPrefix(got, []byte("prefix|")) {
				t.Fatal("dst not appended to")
			}
			got = got[len("prefix|"):]
			path := filepath.Join("testdata", "golden", "request-"+tt.name+".http")
			if *update {
				if err := os.WriteFile(path, got, 0o644); err != nil {
					t.Fatal(err)
				}
			}
			want, err := os.ReadFile(path)
			if err != nil {
				t.Fatal(err)
			}
			if !bytes.Equal(got, want) {
				t.Fatalf("head\n%q\nwant\n%q", got, want)
			}
		})
	}
}

func TestAppendRequestHeadRefusesSplitting(t *testing.T) {
	tests := []struct {
		name    string
		method  string
		target  string
		headers []wire.Header
		code    string
	}{
		{name: "CR in value", method: "GET", target: "/", headers: []wire.Header{{"X", "a\rb"}}, code: nodeerr.ERR_INVALID_CHAR},
		{name: "LF in value", method: "GET", target: "/", headers: []wire.Header{{"X", "a\nSet-Cookie: x"}}, code: nodeerr.ERR_INVALID_CHAR},
		{name: "NUL in value", method: "GET", target: "/", headers: []wire.Header{{"X", "\x00"}}, code: nodeerr.ERR_INVALID_CHAR},
		{name: "above latin1 in value", method: "GET", target: "/", headers: []wire.Header{{"X", "€"}}, code: nodeerr.ERR_INVALID_CHAR},
		{name: "LF in name", method: "GET", target: "/", headers: []wire.Header{{"X\nY", "a"}}, code: nodeerr.ERR_INVALID_HTTP_TOKEN},
		{name: "colon in name", method: "GET", target: "/", headers: []wire.Header{{"X:Y", "a"}}, code: nodeerr.ERR_INVALID_HTTP_TOKEN},
		{name: "empty name", method: "GET", target: "/", headers: []wire.Header{{"", "a"}}, code: nodeerr.ERR_INVALID_HTTP_TOKEN},
		{name: "space in target", method: "GET", target: "/ HTTP/1.0", code: nodeerr.ERR_UNESCAPED_CHARACTERS},
		{name: "CRLF in target", method: "GET", target: "/\r\n", code: nodeerr.ERR_UNESCAPED_CHARACTERS},
		{name: "empty target", method: "GET", target: "", code: nodeerr.ERR_UNESCAPED_CHARACTERS},
		{name: "space in method", method: "GET /", target: "/", code: nodeerr.ERR_INVALID_HTTP_TOKEN},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dst := []byte("keep")
			got, err := wire.AppendRequestHead(dst, tt.method, tt.target, tt.headers)
			wantCode(t, err, tt.code)
			if string(got) != "keep" {
				t.Fatalf("dst changed to %q on error", got)
			}
		})
	}
}

func TestChunkEncoding(t *testing.T) {
	tests := []struct {
		name string
		got  func() ([]byte, error)
		want string
		code string
	}{
		{name: "small", got: func() ([]byte, error) { return wire.AppendChunkHeader(nil, 5), nil }, want: "5\r\n"},
		{name: "hex lower", got: func() ([]byte, error) { return wire.AppendChunkHeader([]byte("x"), 0xABCDEF), nil }, want: "xabcdef\r\n"},
		{name: "last chunk", got: func() ([]byte, error) { return wire.AppendLastChunk(nil, nil) }, want: wire.LastChunk},
		{name: "last chunk with trailers", got: func() ([]byte, error) {
			return wire.AppendLastChunk(nil, []wire.Header{{"X-Checksum", "abc"}, {"x-b", "1"}})
		}, want: "0\r\nX-Checksum: abc\r\nx-b: 1\r\n\r\n"},
		{name: "bad trailer", got: func() ([]byte, error) { return wire.AppendLastChunk([]byte("k"), []wire.Header{{"X", "a\r\n"}}) }, want: "k", code: nodeerr.ERR_INVALID_CHAR},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := tt.got()
			wantCode(t, err, tt.code)
			if string(got) != tt.want {
				t.Fatalf("got %q, want %q", got, tt.want)
			}
		})
	}
	if wire.CRLF != "\r\n" {
		t.Fatal("CRLF")
	}
}

// TestRoundTrip writes a chunked body with the encoders and reads it back
// with the parser.
func TestRoundTrip(t *testing.T) {
	var body []byte
	var want strings.Builder
	for _, part := range []string{"a", strings.Repeat("b", 300), "cd"} {
		body = wire.AppendChunkHeader(body, len(part))
		body = append(body, part...)
		body = append(body, wire.CRLF...)
		want.WriteString(part)
	}
	body, err := wire.AppendLastChunk(body, []wire.Header{{"X-T", "v"}})
	if err != nil {
		t.Fatal(err)
	}
	got, trailers, _, err := readAllBoth(t, string(body), wire.Framing{Kind: wire.FramingChunked}, wire.ParseOptions{})
	if err.Error() != "EOF" || got != want.String() || len(trailers) != 1 || trailers[0] != (wire.Header{Name: "X-T", Value: "v"}) {
		t.Fatalf("got %q %q %v", got, trailers, err)
	}
}
