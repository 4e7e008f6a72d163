package httpengine_test

import (
	"bufio"
	"context"
	"io"
	"net"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/httpgateway/httpgateway/internal/agentpool"
	"github.com/httpgateway/httpgateway/internal/httpengine"
	"github.com/httpgateway/httpgateway/internal/testutil"
)

// captureUpstream records the raw bytes of each connection's first request
// (head and body, as framed) and answers an empty 200.
func captureUpstream(t *testing.T) (*testutil.Upstream, <-chan string) {
	got := make(chan string, 1)
	u := testutil.NewUpstream(t, func(c net.Conn) {
		br := bufio.NewReader(c)
		rec := &recorder{r: br}
		if _, _, err := testutil.ReadRequest(bufio.NewReader(rec)); err != nil {
			return
		}
		got <- rec.b.String()
		_, _ = io.WriteString(c, "HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n")
		_, _ = io.Copy(io.Discard, br)
	})
	return u, got
}

// recorder copies what is read through it.
type recorder struct {
	r io.Reader
	b strings.Builder
}

func (r *recorder) Read(p []byte) (int, error) {
	n, err := r.r.Read(p)
	r.b.Write(p[:n])
	return n, err
}

// TestRequestBytes checks the bytes on the wire against what Node 20 sends
// for the same calls (captured with node:http against a raw TCP server; see
// testdata/node_event_order.js for the method). PORT stands for the port.
func TestRequestBytes(t *testing.T) {
	tr := true
	_ = tr
	keepAlive := agentpool.DefaultOptions()
	keepAlive.KeepAlive = true
	plain := agentpool.DefaultOptions()
	limited := agentpool.DefaultOptions()
	limited.MaxSockets = 2
	f := false
	tests := []struct {
		name  string
		agent agentpool.Options
		opts  httpengine.Options
		drive func(ctx context.Context, c *httpengine.ClientRequest) error
		want  string
	}{
		{
			name:  "GET end()",
			agent: keepAlive,
			drive: func(ctx context.Context, c *httpengine.ClientRequest) error { return c.End(ctx, nil) },
			want:  "GET / HTTP/1.1\r\nHost: 127.0.0.1:PORT\r\nConnection: keep-alive\r\n\r\n",
		},
		{
			name:  "POST end(data) keep-alive agent",
			agent: keepAlive,
			opts:  httpengine.Options{Method: "post"},
			drive: func(ctx context.Context, c *httpengine.ClientRequest) error { return c.End(ctx, []byte("abc")) },
			want:  "POST / HTTP/1.1\r\nHost: 127.0.0.1:PORT\r\nConnection: keep-alive\r\nContent-Length: 3\r\n\r\nabc",
		},
		{
			name:  "POST end() has Content-Length 0",
			agent: keepAlive,
			opts:  httpengine.Options{Method: "POST"},
			drive: func(ctx context.Context, c *httpengine.ClientRequest) error { return c.End(ctx, nil) },
			want:  "POST / HTTP/1.1\r\nHost: 127.0.0.1:PORT\r\nConnection: keep-alive\r\nContent-Length: 0\r\n\r\n",
		},
		{
			name:  "POST write+end without keep-alive is chunked and closes",
			agent: plain,
			opts:  httpengine.Options{Method: "POST"},
			drive: func(ctx context.Context, c *httpengine.ClientRequest) error {
				if err := c.Write(ctx, []byte("ab")); err != nil {
					return err
				}
				if err := c.Write(ctx, nil); err != nil { // an empty write sends nothing
					return err
				}
				return c.End(ctx, []byte("c"))
			},
			want: "POST / HTTP/1.1\r\nHost: 127.0.0.1:PORT\r\nConnection: close\r\nTransfer-Encoding: chunked\r\n\r\n2\r\nab\r\n1\r\nc\r\n0\r\n\r\n",
		},
		{
			name:  "PUT on a maxSockets agent keeps alive",
			agent: limited,
			opts:  httpengine.Options{Method: "PUT"},
			drive: func(ctx context.Context, c *httpengine.ClientRequest) error { return c.End(ctx, []byte("x")) },
			want:  "PUT / HTTP/1.1\r\nHost: 127.0.0.1:PORT\r\nConnection: keep-alive\r\nContent-Length: 1\r\n\r\nx",
		},
		{
			name:  "DELETE body goes without framing",
			agent: keepAlive,
			opts:  httpengine.Options{Method: "DELETE"},
			drive: func(ctx context.Context, c *httpengine.ClientRequest) error { return c.End(ctx, nil) },
			want:  "DELETE / HTTP/1.1\r\nHost: 127.0.0.1:PORT\r\nConnection: keep-alive\r\n\r\n",
		},
		{
			name:  "auth, path and user headers come first",
			agent: keepAlive,
			opts: httpengine.Options{Auth: "us er:p@ss", Path: "/a?b=1", Headers: []httpengine.Header{
				{Name: "X-Foo", Value: "1"}, {Name: "x-foo2", Value: "a"}, {Name: "x-foo2", Value: "b"}}},
			drive: func(ctx context.Context, c *httpengine.ClientRequest) error { return c.End(ctx, nil) },
			want:  "GET /a?b=1 HTTP/1.1\r\nX-Foo: 1\r\nx-foo2: a\r\nx-foo2: b\r\nHost: 127.0.0.1:PORT\r\nAuthorization: Basic dXMgZXI6cEBzcw==\r\nConnection: keep-alive\r\n\r\n",
		},
		{
			name:  "setHost false",
			agent: keepAlive,
			opts:  httpengine.Options{SetHost: &f},
			drive: func(ctx context.Context, c *httpengine.ClientRequest) error { return c.End(ctx, nil) },
			want:  "GET / HTTP/1.1\r\nConnection: keep-alive\r\n\r\n",
		},
		{
			name:  "user Connection close",
			agent: keepAlive,
			opts:  httpengine.Options{Headers: []httpengine.Header{{Name: "Connection", Value: "close"}}},
			drive: func(ctx context.Context, c *httpengine.ClientRequest) error { return c.End(ctx, nil) },
			want:  "GET / HTTP/1.1\r\nConnection: close\r\nHost: 127.0.0.1:PORT\r\n\r\n",
		},
		{
			name:  "flushHeaders then end is chunked",
			agent: keepAlive,
			opts:  httpengine.Options{Method: "POST"},
			drive: func(ctx context.Context, c *httpengine.ClientRequest) error {
				if err := c.FlushHeaders(); err != nil {
					return err
				}
				return c.End(ctx, []byte("abc"))
			},
			want: "POST / HTTP/1.1\r\nHost: 127.0.0.1:PORT\r\nConnection: keep-alive\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n0\r\n\r\n",
		},
		{
			name:  "setHeader replaces keeping position, removeHeader drops",
			agent: keepAlive,
			opts:  httpengine.Options{Headers: []httpengine.Header{{Name: "A", Value: "1"}, {Name: "B", Value: "2"}}},
			drive: func(ctx context.Context, c *httpengine.ClientRequest) error {
				if err := c.SetHeader("a", "x", "y"); err != nil {
					return err
				}
				if err := c.RemoveHeader("B"); err != nil {
					return err
				}
				if err := c.AppendHeader("C", "3"); err != nil {
					return err
				}
				return c.End(ctx, nil)
			},
			want: "GET / HTTP/1.1\r\na: x\r\na: y\r\nHost: 127.0.0.1:PORT\r\nC: 3\r\nConnection: keep-alive\r\n\r\n",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			testutil.CheckLeaks(t)
			u, got := captureUpstream(t)
			a := newAgent(t, tt.agent, agentpool.Deps{})
			o := tt.opts
			o.Host, o.Port = "127.0.0.1", u.Port
			c, err := httpengine.Request(a, false, o, 0)
			if err != nil {
				t.Fatal(err)
			}
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			defer cancel()
			if err := tt.drive(ctx, c); err != nil {
				t.Fatalf("drive: %v", err)
			}
			want := strings.ReplaceAll(tt.want, "PORT", strconv.Itoa(u.Port))
			select {
			case g := <-got:
				if g != want {
					t.Fatalf("wire bytes\n got: %q\nwant: %q", g, want)
				}
			case <-ctx.Done():
				t.Fatal("upstream saw no request")
			}
			evs := events(t, c)
			if last := evs[len(evs)-1]; last.Kind != httpengine.EventClose {
				t.Fatalf("last event %v", last)
			}
		})
	}
}
