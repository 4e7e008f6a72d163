package httpengine_test

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"runtime/debug"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/httpgateway/httpgateway/internal/httpengine"
	"github.com/httpgateway/httpgateway/internal/nodeerr"
	"github.com/httpgateway/httpgateway/internal/testutil"
)

// lender lends chunks to a request and checks the engine's side of the
// deal: each chunk comes back exactly once, and coming back poisons it (as
// a recycled buffer would be overwritten by the next message), so a chunk
// returned before it was written shows up on the wire as poison.
type lender struct {
	t        *testing.T
	mu       sync.Mutex
	changed  *sync.Cond // broadcast on each lend and return
	lent     int
	returned map[int]int // chunk index -> times returned
	gaveUp   bool        // checkAllReturned stopped waiting
}

func newLender(t *testing.T) *lender {
	l := &lender{t: t, returned: map[int]int{}}
	l.changed = sync.NewCond(&l.mu)
	return l
}

// waitOut waits until at least n chunks are lent and not returned.
func (l *lender) waitOut(n int) {
	l.mu.Lock()
	defer l.mu.Unlock()
	for l.lent-len(l.returned) < n {
		l.changed.Wait()
	}
}

// chunk returns a fresh chunk (its own allocation, so poisoning it touches
// nothing else) and the release func to lend it with.
func (l *lender) chunk(b []byte) ([]byte, func()) {
	p := bytes.Clone(b)
	l.mu.Lock()
	i := l.lent
	l.lent++
	l.changed.Broadcast()
	l.mu.Unlock()
	return p, func() {
		l.mu.Lock()
		defer l.mu.Unlock()
		l.returned[i]++
		l.changed.Broadcast()
		for j := range p {
			p[j] = 'X'
		}
	}
}

// checkAllReturned fails unless every chunk came back exactly once. A
// chunk in a write that was in progress when the request closed comes back
// when that write returns, which may be a moment after the close: it waits
// for that, for at most 10 s.
func (l *lender) checkAllReturned() {
	l.t.Helper()
	all := make(chan struct{})
	go func() {
		l.mu.Lock()
		for len(l.returned) < l.lent && !l.gaveUp {
			l.changed.Wait()
		}
		l.mu.Unlock()
		close(all)
	}()
	select {
	case <-all:
	case <-time.After(10 * time.Second):
		l.mu.Lock()
		l.gaveUp = true
		l.changed.Broadcast()
		l.mu.Unlock()
		<-all
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	for i := 0; i < l.lent; i++ {
		if n := l.returned[i]; n != 1 {
			l.t.Errorf("chunk %d returned %d times, want once (%d lent)", i, n, l.lent)
		}
	}
}

func (l *lender) returnedCount() int {
	l.mu.Lock()
	defer l.mu.Unlock()
	return len(l.returned)
}

// pattern is n bytes no two neighbouring chunks share.
func pattern(n int) []byte {
	b := make([]byte, n)
	for i := range b {
		b[i] = byte('a' + (i/7)%26)
	}
	return b
}

// uploadBorrowed sends body in chunks of size through c, all lent, the
// last with EndBorrowed.
func uploadBorrowed(t *testing.T, l *lender, c *httpengine.ClientRequest, body []byte, size int) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	for off := 0; off < len(body); off += size {
		p, release := l.chunk(body[off:min(off+size, len(body))])
		var err error
		if off+size >= len(body) {
			err = c.EndBorrowed(ctx, p, release)
		} else {
			err = c.WriteBorrowed(ctx, p, release)
		}
		if err != nil {
			t.Fatalf("chunk at %d: %v", off, err)
		}
	}
}

// TestWriteBorrowedReturnsOnlyWrittenChunks uploads through an echoing
// upstream: the echoed body must be the one sent (no chunk came back
// before it was written), and every chunk must come back once.
func TestWriteBorrowedReturnsOnlyWrittenChunks(t *testing.T) {
	testutil.CheckLeaks(t)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/307" {
			_, _ = io.Copy(io.Discard, r.Body)
			http.Redirect(w, r, "/echo", http.StatusTemporaryRedirect)
			return
		}
		b, _ := io.ReadAll(r.Body)
		_, _ = w.Write(b)
	}))
	t.Cleanup(srv.Close)
	host, port := hostPort(t, srv.URL)
	a := keepAliveAgent(t)
	tests := []struct {
		name    string
		opts    httpengine.Options
		size    int // body
		chunk   int
		headers []httpengine.Header
	}{
		// 8 MiB in 64 KiB chunks: more than the socket buffers hold, so
		// writes wait at the high-water mark and are partial.
		{name: "content-length", size: 8 << 20, chunk: 64 << 10,
			headers: []httpengine.Header{{Name: "Content-Length", Value: strconv.Itoa(8 << 20)}}},
		{name: "chunked", size: 3<<20 + 17, chunk: 100 << 10},
		// The body waits in the queue for 100 Continue: lent chunks stay
		// queued after WriteBorrowed returned.
		{name: "expect 100-continue", size: 200 << 10, chunk: 16 << 10,
			headers: []httpengine.Header{{Name: "Expect", Value: "100-continue"}}},
		// The replay must send copies: the lent chunks came back (and were
		// poisoned) once the first hop had them.
		{name: "307 replay", opts: httpengine.Options{Path: "/307", Redirect: httpengine.RedirectFollow},
			size: 1 << 20, chunk: 32 << 10},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			l := newLender(t)
			o := tt.opts
			o.Host, o.Port, o.Method, o.Headers = host, port, "POST", tt.headers
			if o.Path == "" {
				o.Path = "/echo"
			}
			c, err := httpengine.Request(a, false, o, 0)
			if err != nil {
				t.Fatal(err)
			}
			body := pattern(tt.size)
			res := make(chan result, 1)
			go func() { res <- collectResult(t, c) }()
			uploadBorrowed(t, l, c, body, tt.chunk)
			r := <-res
			if r.status != 200 || !bytes.Equal(r.body, body) {
				t.Fatalf("status %d, echoed %d bytes (%d poisoned), want the %d sent",
					r.status, len(r.body), bytes.Count(r.body, []byte("X")), len(body))
			}
			l.checkAllReturned()
		})
	}
}

// TestWriteBorrowedConcurrentWriters has two goroutines lend chunks to
// one request: while one is inside the socket write, the other queues and
// returns, and the chunk being written must not come back then. Chunks
// are 64 KiB blocks each filled with its own number, so the echoed body
// can be checked whatever order the writers took turns in.
func TestWriteBorrowedConcurrentWriters(t *testing.T) {
	testutil.CheckLeaks(t)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		_, _ = w.Write(b)
	}))
	t.Cleanup(srv.Close)
	host, port := hostPort(t, srv.URL)
	const block, blocks = 64 << 10, 128
	c, err := httpengine.Request(keepAliveAgent(t), false, httpengine.Options{Host: host, Port: port, Method: "PUT",
		Headers: []httpengine.Header{{Name: "Content-Length", Value: strconv.Itoa(block * blocks)}}}, 0)
	if err != nil {
		t.Fatal(err)
	}
	res := make(chan result, 1)
	go func() { res <- collectResult(t, c) }()
	l := newLender(t)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	var writers sync.WaitGroup
	for w := range 2 {
		writers.Go(func() {
			for i := w; i < blocks; i += 2 {
				p, release := l.chunk(bytes.Repeat([]byte{byte(i)}, block))
				if err := c.WriteBorrowed(ctx, p, release); err != nil {
					t.Errorf("block %d: %v", i, err)
					return
				}
			}
		})
	}
	writers.Wait()
	if err := c.End(ctx, nil); err != nil {
		t.Fatal(err)
	}
	r := <-res
	if r.status != 200 || len(r.body) != block*blocks {
		t.Fatalf("status %d, %d bytes echoed", r.status, len(r.body))
	}
	seen := make([]bool, blocks)
	for off := 0; off < len(r.body); off += block {
		b := r.body[off : off+block]
		id := int(b[0])
		if id >= blocks || seen[id] || !bytes.Equal(b, bytes.Repeat([]byte{b[0]}, block)) {
			t.Fatalf("block at %d is not a whole block sent once (starts %q, %d poisoned bytes)", off, b[:8], bytes.Count(b, []byte("X")))
		}
		seen[id] = true
	}
	l.checkAllReturned()
}

// TestWriteBorrowedReturnsOnFailure: a chunk the request refuses comes
// back before WriteBorrowed returns; chunks queued behind an upstream that
// does not read come back once the request is destroyed.
func TestWriteBorrowedReturnsOnFailure(t *testing.T) {
	testutil.CheckLeaks(t)
	t.Run("refused", func(t *testing.T) {
		srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {}))
		t.Cleanup(srv.Close)
		host, port := hostPort(t, srv.URL)
		c, err := httpengine.Request(keepAliveAgent(t), false, httpengine.Options{Host: host, Port: port, Method: "POST"}, 0)
		if err != nil {
			t.Fatal(err)
		}
		if err := c.End(context.Background(), nil); err != nil {
			t.Fatal(err)
		}
		l := newLender(t)
		p, release := l.chunk([]byte("late"))
		var ne *nodeerr.Error
		if err := c.WriteBorrowed(context.Background(), p, release); !errors.As(err, &ne) || ne.Code != nodeerr.ERR_STREAM_WRITE_AFTER_END {
			t.Fatalf("write after end: %v", err)
		}
		if l.returnedCount() != 1 {
			t.Fatal("the refused chunk was not returned by the time WriteBorrowed returned")
		}
		collectResult(t, c)
		l.checkAllReturned()
	})
	t.Run("destroyed waiting for 100 Continue", func(t *testing.T) {
		// The body is queued behind the head and never written: only the
		// request's close can return it.
		heads := make(chan struct{}, 1)
		release := make(chan struct{})
		u := testutil.NewUpstream(t, func(c net.Conn) {
			// The head only: the body waits for a 100 Continue never sent.
			if _, err := testutil.ReadHead(bufio.NewReader(c)); err != nil {
				return
			}
			heads <- struct{}{}
			<-release
		})
		t.Cleanup(func() { close(release) })
		c, err := httpengine.Request(keepAliveAgent(t), false, httpengine.Options{Host: "127.0.0.1", Port: u.Port, Method: "POST",
			Headers: []httpengine.Header{{Name: "Expect", Value: "100-continue"}}}, 0)
		if err != nil {
			t.Fatal(err)
		}
		l := newLender(t)
		for range 3 {
			p, rel := l.chunk(pattern(1 << 10))
			if err := c.WriteBorrowed(context.Background(), p, rel); err != nil {
				t.Fatal(err)
			}
		}
		<-heads
		if n := l.returnedCount(); n != 0 {
			t.Fatalf("%d chunks returned before they were written", n)
		}
		c.Destroy(nil)
		events(t, c)
		l.checkAllReturned()
	})
	t.Run("destroyed while queued", func(t *testing.T) {
		release := make(chan struct{})
		u := testutil.NewUpstream(t, func(c net.Conn) {
			<-release // never reads: the request's writes fill the buffers and wait
		})
		t.Cleanup(func() { close(release) })
		c, err := httpengine.Request(keepAliveAgent(t), false, httpengine.Options{Host: "127.0.0.1", Port: u.Port, Method: "POST"}, 0)
		if err != nil {
			t.Fatal(err)
		}
		l := newLender(t)
		ctx, cancel := context.WithCancel(context.Background())
		// Two writers: one ends up inside the socket write that cannot
		// finish, the other with its chunk queued behind it, waiting for
		// room. Two chunks out means both are held by the request.
		var writers sync.WaitGroup
		for range 2 {
			writers.Go(func() {
				chunk := pattern(256 << 10)
				for {
					p, rel := l.chunk(chunk)
					if err := c.WriteBorrowed(ctx, p, rel); err != nil {
						return
					}
				}
			})
		}
		l.waitOut(2)
		cancel()
		c.Destroy(nil)
		writers.Wait()
		evs := events(t, c)
		if last := evs[len(evs)-1]; last.Kind != httpengine.EventClose {
			t.Fatalf("last event %v", last)
		}
		l.checkAllReturned()
	})
}

// TestRedirectWhileUploadBlocked: a 303 answered while an upload's write
// is in progress (held there by a test hook) starts the GET to the new
// target, at once or at FollowRedirect; the old write's failure (the old
// socket was closed under it) belongs to the old attempt: it must fail
// neither the new attempt nor the writer (the body is dropped from then
// on), and the lent chunk comes back.
func TestRedirectWhileUploadBlocked(t *testing.T) {
	for _, mode := range []httpengine.RedirectMode{httpengine.RedirectFollow, httpengine.RedirectDeferred} {
		t.Run(map[httpengine.RedirectMode]string{httpengine.RedirectFollow: "follow", httpengine.RedirectDeferred: "deferred"}[mode], func(t *testing.T) {
			testutil.CheckLeaks(t)
			// The hook can hold only a write made by the writer: one made
			// by the socket's goroutine as it connects (which then reads
			// the response) would hold the 303 back too. When that
			// happened, try again.
			for try := 0; ; try++ {
				if redirectDuringWrite(t, mode) {
					return
				}
				if try == 10 {
					t.Fatal("the body was never written by the writer")
				}
			}
		})
	}
}

// redirectDuringWrite runs TestRedirectWhileUploadBlocked once; it reports
// false, having checked nothing, when the body's write was not the
// writer's.
func redirectDuringWrite(t *testing.T, mode httpengine.RedirectMode) bool {
	var first atomic.Bool
	gotHead, answer := make(chan struct{}), make(chan struct{})
	u := testutil.NewUpstream(t, func(c net.Conn) {
		br := bufio.NewReader(c)
		line, err := br.ReadString('\n')
		if err != nil {
			return
		}
		if first.CompareAndSwap(false, true) {
			close(gotHead)
			<-answer // once the body's write is in progress
			_, _ = io.WriteString(c, "HTTP/1.1 303 See Other\r\nLocation: /b\r\nContent-Length: 0\r\n\r\n")
			_, _ = io.Copy(io.Discard, br) // until the client closes
			return
		}
		if strings.HasPrefix(line, "GET /b ") {
			_, _ = io.WriteString(c, "HTTP/1.1 200 OK\r\nContent-Length: 2\r\nConnection: close\r\n\r\nok")
		}
	})
	defer u.Close()
	const bodyLen = 50
	c, err := httpengine.Request(keepAliveAgent(t), false, httpengine.Options{Host: "127.0.0.1", Port: u.Port,
		Method: "POST", Path: "/a", Redirect: mode,
		Headers: []httpengine.Header{{Name: "Content-Length", Value: strconv.Itoa(bodyLen)}}}, 0)
	if err != nil {
		t.Fatal(err)
	}
	// The head goes out alone; the body's write waits in the hook while
	// the server answers 303, until the test lets it go.
	entered, proceed, onSocket := make(chan struct{}), make(chan struct{}), make(chan struct{})
	var once sync.Once
	httpengine.SetBeforeWriteHook(t, func(n int) {
		if n != bodyLen {
			return
		}
		once.Do(func() {
			if strings.Contains(string(debug.Stack()), "OnConnect") {
				close(onSocket)
				return
			}
			close(entered)
			<-proceed
		})
	})
	if err := c.FlushHeaders(); err != nil {
		t.Fatal(err)
	}
	recvOrFail(t, gotHead, "the head")
	l := newLender(t)
	wrote := make(chan error, 1)
	go func() {
		p, rel := l.chunk(pattern(bodyLen))
		wrote <- c.WriteBorrowed(context.Background(), p, rel)
	}()
	select {
	case <-entered:
	case <-onSocket:
		close(answer)
		c.Destroy(nil)
		events(t, c)
		<-wrote
		return false
	case <-time.After(10 * time.Second):
		t.Fatal("the body was never written")
	}
	close(answer)
	waitEvent(t, c, httpengine.EventRedirect, httpengine.TargetRequest)
	close(proceed)
	if mode == httpengine.RedirectDeferred {
		if err := c.FollowRedirect(); err != nil {
			t.Fatal(err)
		}
	}
	r := collectResult(t, c)
	if r.status != 200 || string(r.body) != "ok" {
		t.Fatalf("status %d body %q (events %s)", r.status, r.body, names(r.events))
	}
	if err := <-wrote; err != nil && nodeerr.Code(err) != nodeerr.ERR_STREAM_DESTROYED {
		t.Errorf("write: %v", err)
	}
	l.checkAllReturned()
	return true
}
