package httpengine_test

import (
	"bufio"
	"bytes"
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/httpgateway/httpgateway/internal/agentpool"
	"github.com/httpgateway/httpgateway/internal/httpengine"
	"github.com/httpgateway/httpgateway/internal/testutil"
)

// result gathers what a request's events said.
type result struct {
	events   []httpengine.Event
	status   int
	body     []byte
	trailers []httpengine.Header
	reused   bool
}

func collectResult(t *testing.T, c *httpengine.ClientRequest) result {
	t.Helper()
	var r result
	r.events = events(t, c)
	for _, ev := range r.events {
		switch ev.Kind {
		case httpengine.EventResponse:
			r.status = ev.Head.StatusCode
			r.reused = ev.Reused
		case httpengine.EventData:
			r.body = append(r.body, ev.Data...)
		case httpengine.EventEnd:
			r.trailers = ev.Trailers
		case httpengine.EventError:
			t.Fatalf("error event: %v (events %s)", ev.Err, names(r.events))
		}
	}
	return r
}

func hostPort(t *testing.T, rawURL string) (string, int) {
	h, p, err := net.SplitHostPort(strings.TrimPrefix(rawURL, "http://"))
	if err != nil {
		t.Fatal(err)
	}
	n, _ := strconv.Atoi(p)
	return h, n
}

func do(t *testing.T, a *agentpool.Agent, o httpengine.Options, body []byte) result {
	t.Helper()
	c, err := httpengine.Request(a, false, o, 0)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := c.End(ctx, body); err != nil {
		t.Fatalf("End: %v", err)
	}
	return collectResult(t, c)
}

func TestOrdinaryPaths(t *testing.T) {
	testutil.CheckLeaks(t)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		switch r.URL.Path {
		case "/echo":
			w.Header().Set("X-Method", r.Method)
			w.Header().Set("X-TE", strings.Join(r.TransferEncoding, ","))
			w.Header().Set("X-CL", strconv.FormatInt(r.ContentLength, 10))
			_, _ = w.Write(b)
		case "/trailers":
			w.Header().Set("Trailer", "X-Sum")
			_, _ = io.WriteString(w, "part1,")
			w.(http.Flusher).Flush()
			_, _ = io.WriteString(w, "part2")
			w.Header().Set("X-Sum", "42")
		case "/early":
			w.Header().Set("Link", "</style.css>; rel=preload")
			w.WriteHeader(http.StatusEarlyHints)
			_, _ = io.WriteString(w, "after hints")
		}
	}))
	t.Cleanup(srv.Close)
	host, port := hostPort(t, srv.URL)
	a := keepAliveAgent(t)
	base := httpengine.Options{Host: host, Port: port}

	t.Run("GET", func(t *testing.T) {
		o := base
		o.Path = "/echo"
		r := do(t, a, o, nil)
		if r.status != 200 || len(r.body) != 0 {
			t.Fatalf("status %d body %q", r.status, r.body)
		}
	})
	t.Run("keep-alive reuse", func(t *testing.T) {
		o := base
		o.Path = "/echo"
		do(t, a, o, nil)
		r := do(t, a, o, nil)
		if !r.reused {
			t.Fatal("second request did not reuse the socket")
		}
		if r.events[0].Kind != httpengine.EventSocket || !r.events[0].Reused {
			t.Fatalf("socket event does not say reused: %v", r.events[0])
		}
	})
	t.Run("POST fixed length", func(t *testing.T) {
		o := base
		o.Path, o.Method = "/echo", "POST"
		r := do(t, a, o, []byte("hello"))
		if string(r.body) != "hello" {
			t.Fatalf("body %q", r.body)
		}
	})
	t.Run("POST chunked", func(t *testing.T) {
		o := base
		o.Path, o.Method = "/echo", "POST"
		c, err := httpengine.Request(a, false, o, 0)
		if err != nil {
			t.Fatal(err)
		}
		ctx := context.Background()
		for _, p := range []string{"a", "bb", "ccc"} {
			if err := c.Write(ctx, []byte(p)); err != nil {
				t.Fatal(err)
			}
		}
		if err := c.End(ctx, nil); err != nil {
			t.Fatal(err)
		}
		r := collectResult(t, c)
		if string(r.body) != "abbccc" {
			t.Fatalf("body %q", r.body)
		}
		var te string
		for _, h := range r.events {
			if h.Kind == httpengine.EventResponse {
				for _, rh := range h.Head.RawHeaders {
					if rh.Name == "X-Te" {
						te = rh.Value
					}
				}
			}
		}
		if te != "chunked" {
			t.Fatalf("server saw transfer-encoding %q", te)
		}
	})
	t.Run("trailers", func(t *testing.T) {
		o := base
		o.Path = "/trailers"
		r := do(t, a, o, nil)
		if string(r.body) != "part1,part2" {
			t.Fatalf("body %q", r.body)
		}
		if len(r.trailers) != 1 || r.trailers[0].Name != "X-Sum" || r.trailers[0].Value != "42" {
			t.Fatalf("trailers %v", r.trailers)
		}
	})
	t.Run("103 early hints", func(t *testing.T) {
		o := base
		o.Path = "/early"
		r := do(t, a, o, nil)
		var info *httpengine.Event
		for i := range r.events {
			if r.events[i].Kind == httpengine.EventInformation {
				info = &r.events[i]
			}
		}
		if info == nil || info.Head.StatusCode != 103 {
			t.Fatalf("no 103 information event: %s", names(r.events))
		}
		if string(r.body) != "after hints" {
			t.Fatalf("body %q", r.body)
		}
	})
	t.Run("100-continue", func(t *testing.T) {
		o := base
		o.Path, o.Method = "/echo", "POST"
		o.Headers = []httpengine.Header{{Name: "Expect", Value: "100-continue"}}
		// A long timer: the body must go because of the 100, not the timer.
		o.ExpectContinueTimeout = time.Minute
		r := do(t, a, o, []byte("after continue"))
		if string(r.body) != "after continue" {
			t.Fatalf("body %q", r.body)
		}
		got := names(r.events)
		if !strings.Contains(got, "req:continue req:information") {
			t.Fatalf("no continue: %s", got)
		}
	})
}

// deterministic is a reader of n pseudo-random bytes.
type deterministic struct {
	n, off int64
}

func (d *deterministic) Read(p []byte) (int, error) {
	if d.off >= d.n {
		return 0, io.EOF
	}
	if int64(len(p)) > d.n-d.off {
		p = p[:d.n-d.off]
	}
	for i := range p {
		x := uint64(d.off + int64(i))
		p[i] = byte(x*2654435761>>13) ^ byte(x)
	}
	d.off += int64(len(p))
	return len(p), nil
}

func TestLargeBodies(t *testing.T) {
	if testing.Short() {
		t.Skip("large bodies")
	}
	testutil.CheckLeaks(t)
	const size = 16 << 20
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method == "POST" {
			h := sha256.New()
			n, _ := io.Copy(h, r.Body)
			fmt.Fprintf(w, "%d %x", n, h.Sum(nil))
			return
		}
		w.Header().Set("Content-Length", strconv.Itoa(size))
		_, _ = io.Copy(w, &deterministic{n: size})
	}))
	t.Cleanup(srv.Close)
	host, port := hostPort(t, srv.URL)
	a := keepAliveAgent(t)
	want := sha256.New()
	_, _ = io.Copy(want, &deterministic{n: size})
	wantSum := fmt.Sprintf("%x", want.Sum(nil))

	for _, reuse := range []bool{false, true} {
		t.Run(fmt.Sprintf("download reuse=%v", reuse), func(t *testing.T) {
			download(t, a, httpengine.Options{Host: host, Port: port, ReuseBodyBuffers: reuse}, size, wantSum)
		})
	}
	t.Run("upload", func(t *testing.T) {
		c, err := httpengine.Request(a, false, httpengine.Options{Host: host, Port: port, Method: "POST"}, 0)
		if err != nil {
			t.Fatal(err)
		}
		src := &deterministic{n: size}
		buf := make([]byte, 64<<10)
		for {
			n, err := src.Read(buf)
			if n > 0 {
				if werr := c.Write(context.Background(), append([]byte(nil), buf[:n]...)); werr != nil {
					t.Fatal(werr)
				}
			}
			if errors.Is(err, io.EOF) {
				break
			}
		}
		if err := c.End(context.Background(), nil); err != nil {
			t.Fatal(err)
		}
		r := collectResult(t, c)
		if want := fmt.Sprintf("%d %s", size, wantSum); string(r.body) != want {
			t.Fatalf("server saw %q, want %q", r.body, want)
		}
		if u := c.UploadProgress(); u.Current != size || u.Active {
			t.Fatalf("upload progress at end %+v", u)
		}
	})
}

func TestUpgradeAndConnect(t *testing.T) {
	testutil.CheckLeaks(t)
	// An upstream that switches to an echo protocol on 101, and answers a
	// CONNECT with 200 and then echoes, as a tunnel to an echo server would.
	u := testutil.NewUpstream(t, func(c net.Conn) {
		br := bufio.NewReader(c)
		head, _, err := testutil.ReadRequest(br)
		if err != nil {
			return
		}
		if strings.HasPrefix(head, "CONNECT ") {
			_, _ = io.WriteString(c, "HTTP/1.1 200 Connection Established\r\n\r\nhi")
		} else {
			_, _ = io.WriteString(c, "HTTP/1.1 101 Switching Protocols\r\nConnection: Upgrade\r\nUpgrade: echo\r\n\r\nhi")
		}
		_, _ = io.Copy(c, br) // echo until the client closes
	})
	for _, tc := range []struct {
		name   string
		opts   httpengine.Options
		expect httpengine.EventKind
	}{
		{"upgrade", httpengine.Options{Headers: []httpengine.Header{{Name: "Connection", Value: "Upgrade"}, {Name: "Upgrade", Value: "echo"}}}, httpengine.EventUpgrade},
		{"connect", httpengine.Options{Method: "CONNECT", Path: "example.test:443"}, httpengine.EventConnect},
	} {
		t.Run(tc.name, func(t *testing.T) {
			a := keepAliveAgent(t)
			o := tc.opts
			o.Host, o.Port = "127.0.0.1", u.Port
			c, err := httpengine.Request(a, false, o, 0)
			if err != nil {
				t.Fatal(err)
			}
			if err := c.End(context.Background(), nil); err != nil {
				t.Fatal(err)
			}
			evs := events(t, c)
			var hand *httpengine.Event
			for i := range evs {
				if evs[i].Kind == tc.expect {
					hand = &evs[i]
				}
			}
			if hand == nil || string(hand.Data) != "hi" {
				t.Fatalf("no %v event with head bytes: %s", tc.expect, names(evs))
			}
			if evs[len(evs)-1].Kind != httpengine.EventClose {
				t.Fatalf("request did not close after hand-over: %s", names(evs))
			}
			tun, ok := c.TakeTunnel()
			if !ok {
				t.Fatal("no tunnel")
			}
			defer tun.Conn.Close()
			if _, err := tun.Conn.Write([]byte("ping")); err != nil {
				t.Fatal(err)
			}
			got := make([]byte, 4)
			if _, err := io.ReadFull(tun.Reader, got); err != nil || !bytes.Equal(got, []byte("ping")) {
				t.Fatalf("echo %q %v", got, err)
			}
			if s := a.Snapshot(); s.TotalSockets != 0 {
				t.Fatalf("handed-over socket still counted by the agent: %+v", s)
			}
		})
	}
}

// download reads a body of size bytes through the engine and checks its
// digest; in recycle mode each chunk is hashed before the next event is
// read, as the mode requires.
func download(t *testing.T, a *agentpool.Agent, o httpengine.Options, size int, wantSum string) {
	c, err := httpengine.Request(a, false, o, 0)
	if err != nil {
		t.Fatal(err)
	}
	if err := c.End(context.Background(), nil); err != nil {
		t.Fatal(err)
	}
	h := sha256.New()
	n := 0
	for _, ev := range streamEvents(t, c, func(ev httpengine.Event) {
		if ev.Kind == httpengine.EventData {
			h.Write(ev.Data)
			n += len(ev.Data)
		}
	}) {
		_ = ev
	}
	if n != size || fmt.Sprintf("%x", h.Sum(nil)) != wantSum {
		t.Fatalf("got %d bytes, digest mismatch", n)
	}
}

// streamEvents reads every event (NextHeld), calling fn on each before
// the next read, then Done.
func streamEvents(t *testing.T, c *httpengine.ClientRequest, fn func(httpengine.Event)) []httpengine.Event {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	var out []httpengine.Event
	for seq := uint64(1); ; seq++ {
		ev, err := c.Events().NextHeld(ctx, seq)
		if errors.Is(err, io.EOF) {
			return out
		}
		if err != nil {
			t.Fatal(err)
		}
		fn(ev)
		c.Events().Done(&ev)
		ev.Data = nil
		out = append(out, ev)
	}
}
