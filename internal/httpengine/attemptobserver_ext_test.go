package httpengine_test

import (
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"

	"github.com/httpgateway/httpgateway/internal/agentpool"
	"github.com/httpgateway/httpgateway/internal/httpengine"
	"github.com/httpgateway/httpgateway/internal/testutil"
)

// attemptObserver records the calls it gets, in order, and sets an
// X-Attempt header on each attempt after the first.
type attemptObserver struct {
	mu        sync.Mutex // the engine calls under the request's lock; the test reads after
	calls     []string
	connected []*agentpool.SocketInfo
	attempts  int
}

func (o *attemptObserver) OnEvent(ev httpengine.Event) {
	o.mu.Lock()
	defer o.mu.Unlock()
	o.calls = append(o.calls, ev.String())
}

func (o *attemptObserver) OnConnected(info *agentpool.SocketInfo) {
	o.mu.Lock()
	defer o.mu.Unlock()
	o.calls = append(o.calls, "connected")
	o.connected = append(o.connected, info)
}

func (o *attemptObserver) OnAttempt(kind httpengine.AttemptKind, h *httpengine.OutgoingHeaders) {
	o.mu.Lock()
	defer o.mu.Unlock()
	o.attempts++
	name := map[httpengine.AttemptKind]string{httpengine.AttemptRedirect: "redirect",
		httpengine.AttemptRetry: "retry", httpengine.AttemptLogin: "login"}[kind]
	o.calls = append(o.calls, "attempt:"+name)
	_ = h.Set("X-Attempt", strings.Repeat("I", o.attempts+1))
}

// TestAttemptObserver: an AttemptObserver hears of a new socket once it
// has connected (with its peer and dial timings), not of a reused one,
// and of the redirect hop before its head is rendered: the header it sets
// goes out with that hop only.
func TestAttemptObserver(t *testing.T) {
	testutil.CheckLeaks(t)
	var mu sync.Mutex
	got := map[string]string{} // path -> X-Attempt
	up := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		got[r.URL.Path] = r.Header.Get("X-Attempt")
		mu.Unlock()
		if r.URL.Path == "/a" {
			http.Redirect(w, r, "/b", http.StatusFound)
			return
		}
		_, _ = io.WriteString(w, "b")
	}))
	t.Cleanup(up.Close)
	host, port := hostPort(t, up.URL)
	a := keepAliveAgent(t)
	obs := &attemptObserver{}
	c, err := httpengine.Request(a, false, httpengine.Options{Host: host, Port: port, Path: "/a",
		Redirect: httpengine.RedirectFollow, Observer: obs,
		Headers: []httpengine.Header{{Name: "X-Attempt", Value: "I"}}}, 0)
	if err != nil {
		t.Fatal(err)
	}
	end(t, c)
	if evs := names(events(t, c)); !strings.Contains(evs, "res:end") {
		t.Fatalf("events %s", evs)
	}

	obs.mu.Lock()
	defer obs.mu.Unlock()
	want := "req:socket connected req:finish req:redirect attempt:redirect req:socket req:finish req:response "
	if calls := strings.Join(obs.calls, " "); !strings.HasPrefix(calls, want) {
		t.Errorf("calls\n%s\nwant them to start with\n%s", calls, want)
	}
	if len(obs.connected) != 1 {
		t.Fatalf("OnConnected %d times, want once (the second hop reuses the socket)", len(obs.connected))
	}
	info := obs.connected[0]
	if info.RemoteAddress != "127.0.0.1" || info.RemotePort != port || info.State != agentpool.StateActive {
		t.Errorf("connected socket %+v", info)
	}
	if d := info.Dial; d == nil || d.ConnectDone.IsZero() || d.ConnectDone.Before(d.ConnectStart) || !d.DNSDone.IsZero() {
		t.Errorf("dial timings %+v, want a connect phase and no DNS (IP literal)", d)
	}
	mu.Lock()
	defer mu.Unlock()
	if got["/a"] != "I" || got["/b"] != "II" {
		t.Errorf("X-Attempt: /a %q, /b %q; want I, then the observer's II", got["/a"], got["/b"])
	}
}
