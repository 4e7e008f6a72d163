package httpengine_test

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/httpgateway/httpgateway/internal/agentpool"
	"github.com/httpgateway/httpgateway/internal/httpengine"
	"github.com/httpgateway/httpgateway/internal/nodeerr"
	"github.com/httpgateway/httpgateway/internal/testutil"
)

// TestEventOrderBeforeSocket covers the moments before a socket is
// assigned: a maxSockets=1 agent whose one socket is held by another request
// keeps the request under test in the agent's queue.
func TestEventOrderBeforeSocket(t *testing.T) {
	tests := []struct {
		name  string
		drive func(c *httpengine.ClientRequest)
		want  string
	}{
		{"destroy", func(c *httpengine.ClientRequest) { c.Destroy(nil) }, "req:error(ECONNRESET) req:close"},
		{"destroy with error", func(c *httpengine.ClientRequest) { c.Destroy(nodeerr.New("EBOOM", "boom")) }, "req:error(EBOOM) req:close"},
		{"abort", func(c *httpengine.ClientRequest) { c.Abort() }, "req:abort req:close"},
		{"signal", func(c *httpengine.ClientRequest) { c.Cancel(context.Canceled) }, "req:error(ABORT_ERR) req:close"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			testutil.CheckLeaks(t)
			u := testutil.NewUpstream(t, serveOnce(partial)) // holds its response open
			o := agentpool.DefaultOptions()
			o.MaxSockets = 1
			a := newAgent(t, o, agentpool.Deps{})
			opts := httpengine.Options{Host: "127.0.0.1", Port: u.Port}
			holder, err := httpengine.Request(a, false, opts, 0)
			if err != nil {
				t.Fatal(err)
			}
			end(t, holder)
			waitEvent(t, holder, httpengine.EventData, httpengine.TargetResponse)

			c, err := httpengine.Request(a, false, opts, 0)
			if err != nil {
				t.Fatal(err)
			}
			if q := queued(a); q != 1 {
				t.Fatalf("want the request queued, agent shows %d queued", q)
			}
			tt.drive(c)
			if got := names(events(t, c)); got != tt.want {
				t.Fatalf("events\n got: %s\nwant: %s", got, tt.want)
			}
			if q := queued(a); q != 0 {
				t.Fatalf("destroyed request still queued (%d)", q)
			}
			// A write after destroy fails as Node's does.
			err = c.Write(context.Background(), []byte("x"))
			var ne *nodeerr.Error
			if !errors.As(err, &ne) || ne.Code != nodeerr.ERR_STREAM_DESTROYED {
				t.Fatalf("write after destroy: %v", err)
			}
			holder.Destroy(nil)
			events(t, holder)
		})
	}
}

func queued(a *agentpool.Agent) int {
	n := 0
	for _, ns := range a.Snapshot().Names {
		n += ns.Requests
	}
	return n
}

// TestTimeoutOnlyNotifies: a request timeout emits 'timeout' and the
// request still completes.
func TestTimeoutOnlyNotifies(t *testing.T) {
	testutil.CheckLeaks(t)
	release := make(chan struct{})
	u := testutil.NewUpstream(t, func(c netConn) {
		<-release
		answerAndClose(c, okHello)
	})
	a := keepAliveAgent(t)
	c, err := httpengine.Request(a, false, httpengine.Options{Host: "127.0.0.1", Port: u.Port, Timeout: 20 * time.Millisecond}, 0)
	if err != nil {
		t.Fatal(err)
	}
	end(t, c)
	waitEvent(t, c, httpengine.EventTimeout, httpengine.TargetRequest)
	close(release)
	got := names(events(t, c))
	if want := "req:socket req:finish req:timeout req:response res:data res:end res:close req:close"; got != want {
		t.Fatalf("events\n got: %s\nwant: %s", got, want)
	}
}
