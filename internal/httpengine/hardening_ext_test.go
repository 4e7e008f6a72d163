package httpengine_test

import (
	"bufio"
	"bytes"
	"compress/gzip"
	"io"
	"net"
	"strconv"
	"testing"
	"time"

	"github.com/httpgateway/httpgateway/internal/httpengine"
	"github.com/httpgateway/httpgateway/internal/testutil"
)

// trickle writes s one byte at a time, every interval, until the peer goes.
func trickle(c net.Conn, s string, interval time.Duration) {
	t := time.NewTicker(interval)
	defer t.Stop()
	for i := 0; ; i++ {
		if _, err := c.Write([]byte{s[i%len(s)]}); err != nil {
			return
		}
		<-t.C
	}
}

// TestSlowUpstreamBounded: an upstream that sends one byte at a time,
// forever, in the head or in the body, cannot hold a request past its
// MaxDuration; the socket timeout alone would never fire.
func TestSlowUpstreamBounded(t *testing.T) {
	for _, tc := range []struct {
		name, prefix, drip string
		want               string
	}{
		{"slow headers", "HTTP/1.1 200 OK\r\n", "X-Slow: aaaa", "req:socket req:finish req:error(ETIMEDOUT) req:close"},
		{"slow body", "HTTP/1.1 200 OK\r\nContent-Length: 1000000\r\n\r\n", "z", "req:socket req:finish req:response res:data res:aborted req:close res:error(ETIMEDOUT) res:close"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			testutil.CheckLeaks(t)
			u := testutil.NewUpstream(t, func(c net.Conn) {
				if _, _, err := testutil.ReadRequest(bufio.NewReader(c)); err != nil {
					return
				}
				_, _ = io.WriteString(c, tc.prefix)
				trickle(c, tc.drip, 5*time.Millisecond)
			})
			a := keepAliveAgent(t)
			c, err := httpengine.Request(a, false, httpengine.Options{Host: "127.0.0.1", Port: u.Port,
				Timeout: time.Second, MaxDuration: 200 * time.Millisecond}, 0)
			if err != nil {
				t.Fatal(err)
			}
			end(t, c)
			var got []string
			for _, ev := range events(t, c) {
				if s := ev.String(); s != "res:data" || got[len(got)-1] != "res:data" {
					got = append(got, s)
				}
			}
			if g := joinNames(got); g != tc.want {
				t.Fatalf("events\n got %s\nwant %s", g, tc.want)
			}
		})
	}
}

func joinNames(s []string) string {
	var b bytes.Buffer
	for i, x := range s {
		if i > 0 {
			b.WriteByte(' ')
		}
		b.WriteString(x)
	}
	return b.String()
}

// TestGzipBombPassesThrough: the gateway never decompresses; a body that
// would inflate to 16 MiB arrives as the few KiB that were sent.
func TestGzipBombPassesThrough(t *testing.T) {
	testutil.CheckLeaks(t)
	var bomb bytes.Buffer
	zw, _ := gzip.NewWriterLevel(&bomb, gzip.BestCompression)
	_, _ = zw.Write(make([]byte, 16<<20))
	_ = zw.Close()
	u := testutil.NewUpstream(t, serveOnce("HTTP/1.1 200 OK\r\nContent-Encoding: gzip\r\nContent-Length: "+
		strconv.Itoa(bomb.Len())+"\r\n\r\n"+bomb.String()))
	a := keepAliveAgent(t)
	r := do(t, a, httpengine.Options{Host: "127.0.0.1", Port: u.Port,
		Headers: []httpengine.Header{{Name: "Accept-Encoding", Value: "gzip"}}}, nil)
	if !bytes.Equal(r.body, bomb.Bytes()) {
		t.Fatalf("body is %d bytes, want the %d compressed bytes untouched", len(r.body), bomb.Len())
	}
}

// TestDestroyRacesHandOver: a destroy that races the hand-over of a CONNECT
// 2xx socket must neither crash (the socket may already be gone when the
// hand-over detaches it) nor leak; found by the gRPC-surface fuzzer.
func TestDestroyRacesHandOver(t *testing.T) {
	testutil.CheckLeaks(t)
	u := testutil.NewUpstream(t, func(c net.Conn) {
		if _, _, err := testutil.ReadRequest(bufio.NewReader(c)); err != nil {
			return
		}
		_, _ = io.WriteString(c, "HTTP/1.1 200 Connection Established\r\n\r\n")
		_, _ = io.Copy(io.Discard, c)
	})
	a := keepAliveAgent(t)
	for i := 0; i < 200; i++ {
		c, err := httpengine.Request(a, false, httpengine.Options{Host: "127.0.0.1", Port: u.Port, Method: "CONNECT", Path: "example.test:443"}, 0)
		if err != nil {
			t.Fatal(err)
		}
		end(t, c)
		c.Destroy(nil)
		evs := events(t, c)
		if evs[len(evs)-1].Kind != httpengine.EventClose {
			t.Fatalf("iteration %d does not end with close: %s", i, names(evs))
		}
		if tun, ok := c.TakeTunnel(); ok {
			_ = tun.Conn.Close()
		}
	}
	if s := a.Snapshot(); s.TotalSockets != 0 {
		t.Fatalf("sockets left with the agent: %+v", s)
	}
}
