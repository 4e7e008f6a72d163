package httpengine_test

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/httpgateway/httpgateway/internal/httpengine"
	"github.com/httpgateway/httpgateway/internal/testutil"
)

// seen records what a redirect target received.
type seen struct {
	mu      sync.Mutex
	method  string
	body    string
	auth    string
	cookie  string
	ctype   string
	hostHdr string
}

func redirectServers(t *testing.T) (origin *httptest.Server, other *httptest.Server, got *seen) {
	got = &seen{}
	record := func(r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		got.mu.Lock()
		got.method, got.body, got.auth, got.cookie = r.Method, string(b), r.Header.Get("Authorization"), r.Header.Get("Cookie")
		got.ctype, got.hostHdr = r.Header.Get("Content-Type"), r.Host
		got.mu.Unlock()
	}
	other = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		record(r)
		_, _ = io.WriteString(w, "other")
	}))
	t.Cleanup(other.Close)
	origin = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch {
		case strings.HasPrefix(r.URL.Path, "/code/"):
			_, _ = io.Copy(io.Discard, r.Body)
			var code int
			fmt.Sscanf(r.URL.Path, "/code/%d", &code)
			http.Redirect(w, r, "/final", code)
		case r.URL.Path == "/cross":
			http.Redirect(w, r, other.URL+"/x", http.StatusFound)
		case r.URL.Path == "/loop":
			http.Redirect(w, r, "/loop", http.StatusFound)
		case r.URL.Path == "/final":
			record(r)
			_, _ = io.WriteString(w, "final")
		}
	}))
	t.Cleanup(origin.Close)
	return origin, other, got
}

func TestRedirectFollow(t *testing.T) {
	testutil.CheckLeaks(t)
	origin, _, got := redirectServers(t)
	host, port := hostPort(t, origin.URL)
	a := keepAliveAgent(t)
	form := []httpengine.Header{{Name: "Content-Type", Value: "text/plain"}, {Name: "Authorization", Value: "Bearer s3cret"}, {Name: "Cookie", Value: "a=b"}}

	tests := []struct {
		name, method, path, body string
		wantMethod, wantBody     string
		wantCreds                bool // Authorization and Cookie still sent
		wantCType                string
	}{
		{name: "302 GET", method: "GET", path: "/code/302", wantMethod: "GET", wantCreds: true, wantCType: "text/plain"},
		{name: "301 POST becomes GET", method: "POST", path: "/code/301", body: "data", wantMethod: "GET", wantCreds: true},
		{name: "302 POST becomes GET", method: "POST", path: "/code/302", body: "data", wantMethod: "GET", wantCreds: true},
		{name: "303 PUT becomes GET", method: "PUT", path: "/code/303", body: "data", wantMethod: "GET", wantCreds: true},
		{name: "307 keeps POST and body", method: "POST", path: "/code/307", body: "data", wantMethod: "POST", wantBody: "data", wantCreds: true, wantCType: "text/plain"},
		{name: "308 keeps PUT and body", method: "PUT", path: "/code/308", body: "data", wantMethod: "PUT", wantBody: "data", wantCreds: true, wantCType: "text/plain"},
		{name: "cross-origin drops credentials", method: "GET", path: "/cross", wantMethod: "GET", wantCreds: false, wantCType: "text/plain"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			o := httpengine.Options{Host: host, Port: port, Path: tt.path, Method: tt.method, Headers: form, Redirect: httpengine.RedirectFollow}
			r := do(t, a, o, []byte(tt.body))
			got.mu.Lock()
			defer got.mu.Unlock()
			if got.method != tt.wantMethod || got.body != tt.wantBody {
				t.Fatalf("target saw %s %q, want %s %q", got.method, got.body, tt.wantMethod, tt.wantBody)
			}
			if creds := got.auth != "" && got.cookie != ""; creds != tt.wantCreds {
				t.Fatalf("credentials sent = %v (auth %q cookie %q), want %v", creds, got.auth, got.cookie, tt.wantCreds)
			}
			if got.ctype != tt.wantCType {
				t.Fatalf("content-type %q, want %q", got.ctype, tt.wantCType)
			}
			var redirects, sockets int
			var resp *httpengine.Event
			for i, ev := range r.events {
				switch ev.Kind {
				case httpengine.EventRedirect:
					redirects++
					if ev.Redirect.Awaiting {
						t.Fatal("follow mode event says awaiting")
					}
				case httpengine.EventSocket:
					sockets++
				case httpengine.EventResponse:
					resp = &r.events[i]
				}
			}
			if redirects != 1 || sockets != 2 || resp == nil || len(resp.Redirects) != 1 {
				t.Fatalf("want one redirect hop and two sockets: %s", names(r.events))
			}
			if !strings.Contains(got.hostHdr, ":") {
				t.Fatalf("Host header %q not recomputed for the target", got.hostHdr)
			}
		})
	}
}

func TestRedirectLimitsAndModes(t *testing.T) {
	testutil.CheckLeaks(t)
	origin, _, _ := redirectServers(t)
	host, port := hostPort(t, origin.URL)
	a := keepAliveAgent(t)
	run := func(t *testing.T, o httpengine.Options, body []byte) []httpengine.Event {
		o.Host, o.Port = host, port
		c, err := httpengine.Request(a, false, o, 0)
		if err != nil {
			t.Fatal(err)
		}
		_ = c.End(context.Background(), body)
		return events(t, c)
	}
	lastError := func(evs []httpengine.Event) string {
		for i := len(evs) - 1; i >= 0; i-- {
			if evs[i].Kind == httpengine.EventError {
				return evs[i].Err.Code
			}
		}
		return ""
	}
	t.Run("loop hits the maximum", func(t *testing.T) {
		evs := run(t, httpengine.Options{Path: "/loop", Redirect: httpengine.RedirectFollow, MaxRedirects: 5}, nil)
		if code := lastError(evs); code != httpengine.ErrTooManyRedirects {
			t.Fatalf("want %s: %s", httpengine.ErrTooManyRedirects, names(evs))
		}
		if n := strings.Count(names(evs), "req:redirect"); n != 5 {
			t.Fatalf("want 5 hops, got %d", n)
		}
	})
	t.Run("error mode", func(t *testing.T) {
		evs := run(t, httpengine.Options{Path: "/code/302", Redirect: httpengine.RedirectError}, nil)
		if got := names(evs); got != "req:socket req:finish req:error("+httpengine.ErrRedirectRefused+") req:close" {
			t.Fatalf("events %s", got)
		}
	})
	t.Run("manual mode is Node's: the 3xx is the response", func(t *testing.T) {
		evs := run(t, httpengine.Options{Path: "/code/302"}, nil)
		if !strings.Contains(names(evs), "req:response") || evs[2].Head.StatusCode != 302 {
			t.Fatalf("events %s", names(evs))
		}
	})
	t.Run("307 with a body too large to replay", func(t *testing.T) {
		evs := run(t, httpengine.Options{Path: "/code/307", Method: "POST", Redirect: httpengine.RedirectFollow, MaxReplayBody: 4}, []byte("longer than four"))
		if code := lastError(evs); code != httpengine.ErrRedirectNotReplayable {
			t.Fatalf("want %s: %s", httpengine.ErrRedirectNotReplayable, names(evs))
		}
	})
}

func TestRedirectDeferred(t *testing.T) {
	testutil.CheckLeaks(t)
	origin, _, _ := redirectServers(t)
	host, port := hostPort(t, origin.URL)
	a := keepAliveAgent(t)
	start := func(t *testing.T, timeout time.Duration) *httpengine.ClientRequest {
		c, err := httpengine.Request(a, false, httpengine.Options{Host: host, Port: port, Path: "/code/302",
			Redirect: httpengine.RedirectDeferred, RedirectDecisionTimeout: timeout}, 0)
		if err != nil {
			t.Fatal(err)
		}
		end(t, c)
		waitEvent(t, c, httpengine.EventRedirect, httpengine.TargetRequest)
		return c
	}
	t.Run("follow", func(t *testing.T) {
		c := start(t, time.Minute)
		if err := c.FollowRedirect(); err != nil {
			t.Fatal(err)
		}
		r := collectResult(t, c)
		if r.status != 200 || string(r.body) != "final" {
			t.Fatalf("status %d body %q", r.status, r.body)
		}
		if err := c.FollowRedirect(); err == nil {
			t.Fatal("FollowRedirect with nothing pending succeeded")
		}
	})
	t.Run("abort", func(t *testing.T) {
		c := start(t, time.Minute)
		c.Abort()
		if got := names(events(t, c)); got != "req:socket req:finish req:redirect req:abort req:close" {
			t.Fatalf("events %s", got)
		}
	})
	t.Run("decision timeout fails the request", func(t *testing.T) {
		c := start(t, 10*time.Millisecond)
		want := "req:socket req:finish req:redirect req:error(" + httpengine.ErrRedirectTimeout + ") req:close"
		if got := names(events(t, c)); got != want {
			t.Fatalf("events\n got %s\nwant %s", got, want)
		}
	})
}
