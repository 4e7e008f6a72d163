package httpengine_test

import (
	"bufio"
	"context"
	"errors"
	"io"
	"net"
	"net/netip"
	"strings"
	"testing"
	"time"

	"github.com/httpgateway/httpgateway/internal/agentpool"
	"github.com/httpgateway/httpgateway/internal/httpengine"
	"github.com/httpgateway/httpgateway/internal/nodeerr"
	"github.com/httpgateway/httpgateway/internal/testutil"
)

// newAgent returns an agent destroyed at cleanup.
func newAgent(t *testing.T, o agentpool.Options, deps agentpool.Deps) *agentpool.Agent {
	t.Helper()
	a, err := agentpool.New("test", o, deps)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(a.Destroy)
	return a
}

func keepAliveAgent(t *testing.T) *agentpool.Agent {
	o := agentpool.DefaultOptions()
	o.KeepAlive = true
	return newAgent(t, o, agentpool.Deps{})
}

// events reads every event of c until its log finishes.
func events(t *testing.T, c *httpengine.ClientRequest) []httpengine.Event {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	var out []httpengine.Event
	for seq := uint64(1); ; seq++ {
		ev, err := c.Events().Next(ctx, seq)
		if errors.Is(err, io.EOF) {
			return out
		}
		if err != nil {
			t.Fatalf("events so far %v: %v", names(out), err)
		}
		out = append(out, ev)
	}
}

func names(evs []httpengine.Event) string {
	s := make([]string, len(evs))
	for i, e := range evs {
		s[i] = e.String()
	}
	return strings.Join(s, " ")
}

// waitEvent reads events from seq 1 until one of kind k on target tg and
// returns the next sequence number to read.
func waitEvent(t *testing.T, c *httpengine.ClientRequest, k httpengine.EventKind, tg httpengine.Target) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	for seq := uint64(1); ; seq++ {
		ev, err := c.Events().Next(ctx, seq)
		if err != nil {
			t.Fatalf("waiting for %v: %v", k, err)
		}
		if ev.Kind == k && ev.Target == tg {
			return
		}
	}
}

// serveOnce answers the first request on each connection with resp, then
// holds the connection open until the peer closes it.
func serveOnce(resp string) func(net.Conn) {
	return func(c net.Conn) {
		br := bufio.NewReader(c)
		if _, _, err := testutil.ReadRequest(br); err != nil {
			return
		}
		_, _ = io.WriteString(c, resp)
		_, _ = io.Copy(io.Discard, br)
	}
}

const okHello = "HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nhello"
const partial = "HTTP/1.1 200 OK\r\nContent-Length: 50\r\n\r\nhel"

// blockingResolver resolves every name to 127.0.0.1 once release is closed:
// it holds a socket in its connecting phase.
type blockingResolver struct{ release chan struct{} }

func (r blockingResolver) LookupNetIP(ctx context.Context, _, _ string) ([]netip.Addr, error) {
	select {
	case <-r.release:
		return []netip.Addr{netip.MustParseAddr("127.0.0.1")}, nil
	case <-ctx.Done():
		return nil, ctx.Err()
	}
}

func TestEventOrder(t *testing.T) {
	tests := []struct {
		name string
		// script is the upstream; nil means a port nothing listens on.
		script func(net.Conn)
		// blockDial holds the socket in its connecting phase.
		blockDial bool
		// drive acts on the request after it was created.
		drive func(t *testing.T, c *httpengine.ClientRequest)
		want  string
		// wantCodes lists the codes of the error events, in order.
		wantCodes []string
	}{
		{
			name:   "success",
			script: serveOnce(okHello),
			drive:  func(t *testing.T, c *httpengine.ClientRequest) { end(t, c) },
			want:   "req:socket req:finish req:response res:data res:end res:close req:close",
		},
		{
			name:      "connection refused",
			script:    nil,
			drive:     func(t *testing.T, c *httpengine.ClientRequest) {},
			want:      "req:socket req:error(ECONNREFUSED) req:close",
			wantCodes: []string{nodeerr.ECONNREFUSED},
		},
		{
			name:   "premature close before response",
			script: func(c net.Conn) { _, _, _ = testutil.ReadRequest(bufio.NewReader(c)) },
			drive:  func(t *testing.T, c *httpengine.ClientRequest) { end(t, c) },
			want:   "req:socket req:finish req:error(ECONNRESET) req:close",
		},
		{
			name: "premature close after response",
			script: func(c net.Conn) {
				_, _, _ = testutil.ReadRequest(bufio.NewReader(c))
				_, _ = io.WriteString(c, partial)
			},
			drive: func(t *testing.T, c *httpengine.ClientRequest) { end(t, c) },
			want:  "req:socket req:finish req:response res:data res:aborted req:close res:error(ECONNRESET) res:close",
		},
		{
			name:      "destroy before connected",
			script:    serveOnce(okHello),
			blockDial: true,
			drive: func(t *testing.T, c *httpengine.ClientRequest) {
				waitEvent(t, c, httpengine.EventSocket, httpengine.TargetRequest)
				c.Destroy(nil)
			},
			want: "req:socket req:error(ECONNRESET) req:close",
		},
		{
			name:   "destroy after response",
			script: serveOnce(partial),
			drive: func(t *testing.T, c *httpengine.ClientRequest) {
				end(t, c)
				waitEvent(t, c, httpengine.EventData, httpengine.TargetResponse)
				c.Destroy(nil)
			},
			want: "req:socket req:finish req:response res:data res:aborted req:close res:error(ECONNRESET) res:close",
		},
		{
			name:   "destroy with error after response",
			script: serveOnce(partial),
			drive: func(t *testing.T, c *httpengine.ClientRequest) {
				end(t, c)
				waitEvent(t, c, httpengine.EventData, httpengine.TargetResponse)
				c.Destroy(nodeerr.New("EBOOM", "boom"))
			},
			want: "req:socket req:finish req:response res:data res:aborted req:close res:error(EBOOM) res:close",
		},
		{
			name:      "abort before connected",
			script:    serveOnce(okHello),
			blockDial: true,
			drive: func(t *testing.T, c *httpengine.ClientRequest) {
				waitEvent(t, c, httpengine.EventSocket, httpengine.TargetRequest)
				c.Abort()
			},
			want: "req:socket req:abort req:error(ECONNRESET) req:close",
		},
		{
			name:   "abort after response",
			script: serveOnce(partial),
			drive: func(t *testing.T, c *httpengine.ClientRequest) {
				end(t, c)
				waitEvent(t, c, httpengine.EventData, httpengine.TargetResponse)
				c.Abort()
			},
			want: "req:socket req:finish req:response res:data req:abort res:aborted res:error(ECONNRESET) req:close res:close",
		},
		{
			name:   "signal after response",
			script: serveOnce(partial),
			drive: func(t *testing.T, c *httpengine.ClientRequest) {
				end(t, c)
				waitEvent(t, c, httpengine.EventData, httpengine.TargetResponse)
				c.Cancel(context.Canceled)
			},
			want: "req:socket req:finish req:response res:data req:error(ABORT_ERR) res:aborted req:close res:error(ECONNRESET) res:close",
		},
		{
			name:      "signal before connected",
			script:    serveOnce(okHello),
			blockDial: true,
			drive: func(t *testing.T, c *httpengine.ClientRequest) {
				waitEvent(t, c, httpengine.EventSocket, httpengine.TargetRequest)
				c.Cancel(context.Canceled)
			},
			want: "req:socket req:error(ABORT_ERR) req:close",
		},
		{
			name:   "informational and continue",
			script: serveOnce("HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 103 Early Hints\r\nLink: </a>\r\n\r\n" + okHello),
			drive:  func(t *testing.T, c *httpengine.ClientRequest) { end(t, c) },
			want:   "req:socket req:finish req:continue req:information req:information req:response res:data res:end res:close req:close",
		},
		{
			name:   "bad chunk mid-body",
			script: serveOnce("HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\nzz\r\n"),
			drive:  func(t *testing.T, c *httpengine.ClientRequest) { end(t, c) },
			want:   "req:socket req:finish req:response res:data req:error(HPE_INVALID_CHUNK_SIZE) res:aborted req:close res:error(ECONNRESET) res:close",
		},
		{
			name:   "header overflow",
			script: serveOnce("HTTP/1.1 200 OK\r\nX-Big: " + strings.Repeat("a", 20000) + "\r\n\r\n"),
			drive:  func(t *testing.T, c *httpengine.ClientRequest) { end(t, c) },
			want:   "req:socket req:finish req:error(HPE_HEADER_OVERFLOW) req:close",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			testutil.CheckLeaks(t)
			port := closedPort(t)
			if tt.script != nil {
				port = testutil.NewUpstream(t, tt.script).Port
			}
			deps := agentpool.Deps{}
			host := "127.0.0.1"
			if tt.blockDial {
				r := blockingResolver{release: make(chan struct{})}
				t.Cleanup(func() { close(r.release) })
				deps.Resolver = r
				host = "blocked.test"
			}
			a := newAgent(t, agentpool.DefaultOptions(), deps)
			c, err := httpengine.Request(a, false, httpengine.Options{Host: host, Port: port, Path: "/"}, 0)
			if err != nil {
				t.Fatal(err)
			}
			tt.drive(t, c)
			evs := events(t, c)
			if got := names(evs); got != tt.want {
				t.Fatalf("events\n got: %s\nwant: %s", got, tt.want)
			}
			for _, ev := range evs {
				if ev.Kind == httpengine.EventError && ev.Err.Code == nodeerr.ECONNREFUSED {
					if ev.Err.Syscall != "connect" || ev.Err.Port != port {
						t.Errorf("ECONNREFUSED error lacks syscall/port: %+v", ev.Err)
					}
				}
			}
		})
	}
}

func end(t *testing.T, c *httpengine.ClientRequest) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := c.End(ctx, nil); err != nil {
		t.Fatalf("End: %v", err)
	}
}

// closedPort returns a loopback port nothing listens on.
func closedPort(t *testing.T) int {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	port := ln.Addr().(*net.TCPAddr).Port
	_ = ln.Close()
	return port
}

// recordingObserver records the events it is shown.
type recordingObserver struct{ seen []string }

func (r *recordingObserver) OnEvent(ev httpengine.Event) {
	if ev.Seq == 0 || ev.Time.IsZero() {
		r.seen = append(r.seen, "unstamped")
	}
	r.seen = append(r.seen, ev.String())
}

// TestObserverSeesEveryEvent: the observer hook sees the same events, in the
// same order, as the event log.
func TestObserverSeesEveryEvent(t *testing.T) {
	testutil.CheckLeaks(t)
	u := testutil.NewUpstream(t, serveOnce(okHello))
	a := keepAliveAgent(t)
	obs := &recordingObserver{}
	c, err := httpengine.Request(a, false, httpengine.Options{Host: "127.0.0.1", Port: u.Port, Observer: obs}, 0)
	if err != nil {
		t.Fatal(err)
	}
	end(t, c)
	got := names(events(t, c))
	if strings.Join(obs.seen, " ") != got {
		t.Fatalf("observer saw %v, log has %s", obs.seen, got)
	}
}
