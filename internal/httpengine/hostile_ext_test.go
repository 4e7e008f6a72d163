package httpengine_test

import (
	"strings"
	"testing"

	"github.com/httpgateway/httpgateway/internal/agentpool"
	"github.com/httpgateway/httpgateway/internal/httpengine"
	"github.com/httpgateway/httpgateway/internal/nodeerr"
	"github.com/httpgateway/httpgateway/internal/testutil"
)

// TestBadResponses drives the engine against upstreams that send malformed
// or hostile bytes: each must end with the error Node reports, the socket
// closed, and nothing left behind.
func TestBadResponses(t *testing.T) {
	tests := []struct {
		name     string
		response string
		// code of the first error event; onResponse: it is reported after
		// the response head (on the response, or the request for parse
		// errors in the body).
		code string
	}{
		// Codes and orders as Node 20 reports them for the same bytes.
		{"CL then TE", "HTTP/1.1 200 OK\r\nContent-Length: 3\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n", nodeerr.HPE_INVALID_TRANSFER_ENCODING},
		{"TE then CL", "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\nContent-Length: 3\r\n\r\n0\r\n\r\n", nodeerr.HPE_INVALID_CONTENT_LENGTH},
		{"differing Content-Length", "HTTP/1.1 200 OK\r\nContent-Length: 3\r\nContent-Length: 4\r\n\r\nabc", nodeerr.HPE_UNEXPECTED_CONTENT_LENGTH},
		{"bad Content-Length", "HTTP/1.1 200 OK\r\nContent-Length: 3x\r\n\r\nabc", nodeerr.HPE_INVALID_CONTENT_LENGTH},
		{"LF-only lines", "HTTP/1.1 200 OK\nContent-Length: 0\n\n", nodeerr.HPE_CR_EXPECTED},
		{"obs-fold", "HTTP/1.1 200 OK\r\nX-A: a\r\n b\r\nContent-Length: 0\r\n\r\n", nodeerr.HPE_INVALID_HEADER_TOKEN},
		{"space before colon", "HTTP/1.1 200 OK\r\nContent-Length : 0\r\n\r\n", nodeerr.HPE_INVALID_HEADER_TOKEN},
		{"bad status code", "HTTP/1.1 2000 OK\r\n\r\n", nodeerr.HPE_INVALID_STATUS},
		{"bad version", "HTTP/2.5 200 OK\r\n\r\n", nodeerr.HPE_INVALID_VERSION},
		{"not HTTP", "SSH-2.0-OpenSSH\r\n\r\n", nodeerr.HPE_INVALID_CONSTANT},
		{"header overflow", "HTTP/1.1 200 OK\r\nX: " + strings.Repeat("a", 17000) + "\r\n\r\n", nodeerr.HPE_HEADER_OVERFLOW},
		{"bad chunk size", "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nxyz\r\n", nodeerr.HPE_INVALID_CHUNK_SIZE},
		{"chunk size overflow", "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nffffffffffffffffff\r\n", nodeerr.HPE_INVALID_CHUNK_SIZE},
		{"chunk extension flood", "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n1;" + strings.Repeat("x=y;", 20000) + "\r\na\r\n", nodeerr.HPE_CHUNK_EXTENSIONS_OVERFLOW},
		{"endless 1xx", strings.Repeat("HTTP/1.1 103 Early Hints\r\n\r\n", 40), nodeerr.ERR_GATEWAY_TOO_MANY_1XX},
		{"body cut short", "HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\nabc", nodeerr.ECONNRESET},
		{"chunked body cut short", "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nab", nodeerr.ECONNRESET},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			testutil.CheckLeaks(t)
			// The upstream answers and closes: a body cut short ends there.
			u := testutil.NewUpstream(t, func(c netConn) {
				answerAndClose(c, tt.response)
			})
			a := keepAliveAgent(t)
			c, err := httpengine.Request(a, false, httpengine.Options{Host: "127.0.0.1", Port: u.Port}, 0)
			if err != nil {
				t.Fatal(err)
			}
			end(t, c)
			evs := events(t, c)
			var first *nodeerr.Error
			for _, ev := range evs {
				if ev.Kind == httpengine.EventError {
					first = ev.Err
					break
				}
			}
			if first == nil || first.Code != tt.code {
				t.Fatalf("want error %s, got events %s", tt.code, names(evs))
			}
			if last := evs[len(evs)-1]; last.Kind != httpengine.EventClose {
				t.Fatalf("does not end with close: %s", names(evs))
			}
			if s := a.Snapshot(); s.TotalSockets != 0 {
				t.Fatalf("socket kept after a bad response: %+v", s)
			}
		})
	}
}

// TestUnsolicitedResponse: bytes after a complete response, on an idle
// keep-alive socket, make the pool drop the socket instead of handing the
// stray response to the next request.
func TestUnsolicitedResponse(t *testing.T) {
	testutil.CheckLeaks(t)
	u := testutil.NewUpstream(t, serveOnce("HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nokHTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nstray"))
	a := keepAliveAgent(t)
	sub := a.Subscribe(64)
	defer sub.Close()
	r := do(t, a, httpengine.Options{Host: "127.0.0.1", Port: u.Port}, nil)
	if string(r.body) != "ok" {
		t.Fatalf("body %q", r.body)
	}
	for ev := range sub.C() {
		if ev.Type == agentpool.EventSocketClosed {
			return // dropped, as it must be
		}
	}
	t.Fatal("subscription ended before the socket was closed")
}
