package agentpool

import (
	"bufio"
	"strings"
	"testing"
)

// FuzzReadConnectResponse: the CONNECT response reader never panics,
// never reads past its bound, and returns a three-digit code when it
// accepts a head.
func FuzzReadConnectResponse(f *testing.F) {
	for _, s := range []string{
		"HTTP/1.1 200 Connection established\r\n\r\n",
		"HTTP/1.0 200\r\n\r\n",
		"HTTP/1.1 407 Proxy Authentication Required\r\nProxy-Authenticate: Basic realm=\"x\"\r\n\r\n",
		"HTTP/1.1 200 OK\n\n",
		"HTTP/1.1 200 OK\r\nX: a\r\n b\r\n\r\n",
		"HTTP/2 200\r\n\r\n",
		"",
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, in string) {
		r := strings.NewReader(in)
		br := bufio.NewReaderSize(r, readBufSize)
		res, err := readConnectResponse(br)
		consumed := int(r.Size()) - r.Len() - br.Buffered()
		if consumed > maxConnectHeadBytes+readBufSize {
			t.Fatalf("consumed %d bytes", consumed)
		}
		if err == nil && (res.code < 100 || res.code > 999) {
			t.Fatalf("accepted code %d", res.code)
		}
		_, _ = ParseProxyAuthenticate(res.authenticate)
	})
}
