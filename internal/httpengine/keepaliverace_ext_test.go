package httpengine_test

import (
	"bufio"
	"context"
	"io"
	"net"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/httpgateway/httpgateway/internal/agentpool"
	"github.com/httpgateway/httpgateway/internal/httpengine"
	"github.com/httpgateway/httpgateway/internal/nodeerr"
	"github.com/httpgateway/httpgateway/internal/testutil"
)

// raceUpstream answers the first request on its first connection, then
// closes that connection as soon as the next request arrives on it, without
// answering: what a client sees when a server drops an idle keep-alive
// connection just as a request is sent on it. Later connections answer
// every request.
func raceUpstream(t *testing.T) *testutil.Upstream {
	var conns atomic.Int32
	return testutil.NewUpstream(t, func(c net.Conn) {
		first := conns.Add(1) == 1
		br := bufio.NewReader(c)
		for i := 0; ; i++ {
			if _, _, err := testutil.ReadRequest(br); err != nil {
				return
			}
			if first && i == 1 {
				return // closes with the request unanswered
			}
			if _, err := io.WriteString(c, "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok"); err != nil {
				return
			}
		}
	})
}

func TestKeepAliveRace(t *testing.T) {
	tests := []struct {
		name   string
		retry  bool
		method string
		body   string
		// wantOK: the second request succeeds (retried on a fresh socket).
		wantOK bool
	}{
		{name: "no retry: reused-socket ECONNRESET", retry: false, method: "GET"},
		{name: "retry recovers GET", retry: true, method: "GET", wantOK: true},
		{name: "retry never for POST", retry: true, method: "POST", body: "x"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			testutil.CheckLeaks(t)
			u := raceUpstream(t)
			o := agentpool.DefaultOptions()
			o.KeepAlive = true
			o.RetryReusedIdempotent = tt.retry
			a := newAgent(t, o, agentpool.Deps{})
			opts := httpengine.Options{Host: "127.0.0.1", Port: u.Port}

			first := do(t, a, opts, nil)
			if first.status != 200 || first.reused {
				t.Fatalf("first request: status %d reused %v", first.status, first.reused)
			}

			opts.Method = tt.method
			c, err := httpengine.Request(a, false, opts, 0)
			if err != nil {
				t.Fatal(err)
			}
			_ = c.End(context.Background(), []byte(tt.body))
			evs := events(t, c)
			got := names(evs)
			if !evs[0].Reused {
				t.Fatalf("second request did not get the pooled socket: %s", got)
			}
			if tt.wantOK {
				if !strings.Contains(got, "req:response") || strings.Contains(got, "error") {
					t.Fatalf("retry did not recover: %s", got)
				}
				if strings.Count(got, "req:socket") != 2 {
					t.Fatalf("want a second socket event for the retry: %s", got)
				}
				return
			}
			var errEv *httpengine.Event
			for i := range evs {
				if evs[i].Kind == httpengine.EventError {
					errEv = &evs[i]
				}
			}
			if errEv == nil || errEv.Err.Code != nodeerr.ECONNRESET || errEv.Err.Message != "socket hang up" {
				t.Fatalf("want ECONNRESET socket hang up: %s", got)
			}
			if !httpengine.IsReusedSocket(errEv.Err) {
				t.Fatalf("error does not say the socket was reused: %+v", errEv.Err)
			}
		})
	}
}
