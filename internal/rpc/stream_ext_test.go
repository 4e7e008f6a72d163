package rpc_test

import (
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"hash"
	"io"
	"net/http"
	"net/http/httptest"
	"runtime"
	"strconv"
	"sync"
	"testing"
	"time"

	pb "github.com/httpgateway/httpgateway/gen/httpgateway/v1"
	"github.com/httpgateway/httpgateway/internal/rpc"
	"github.com/httpgateway/httpgateway/internal/testutil"
)

const (
	streamBytes   = 100 << 20
	streamChunk   = 64 << 10
	maxHeapGrowth = 64 << 20
)

// patternReader yields a deterministic byte stream: byte i is i mod 251.
type patternReader struct{ off int64 }

func (r *patternReader) Read(p []byte) (int, error) {
	for i := range p {
		p[i] = byte((r.off + int64(i)) % 251)
	}
	r.off += int64(len(p))
	return len(p), nil
}

func patternSum(n int64) string {
	h := sha256.New()
	_, _ = io.CopyN(h, &patternReader{}, n)
	return hex.EncodeToString(h.Sum(nil))
}

// heapWatch samples HeapInuse after a GC while a transfer runs and
// reports the largest growth over the baseline taken at start.
type heapWatch struct {
	base, peak uint64
	stop       chan struct{}
	done       sync.WaitGroup
}

func heapInuse() uint64 {
	runtime.GC()
	var m runtime.MemStats
	runtime.ReadMemStats(&m)
	return m.HeapInuse
}

func watchHeap() *heapWatch {
	w := &heapWatch{base: heapInuse(), stop: make(chan struct{})}
	w.peak = w.base
	w.done.Add(1)
	go func() { // ends when stop is closed
		defer w.done.Done()
		tick := time.NewTicker(100 * time.Millisecond)
		defer tick.Stop()
		for {
			select {
			case <-w.stop:
				return
			case <-tick.C:
				w.peak = max(w.peak, heapInuse())
			}
		}
	}()
	return w
}

// finish stops sampling and fails the test if the heap grew too much.
func (w *heapWatch) finish(t *testing.T, what string) {
	t.Helper()
	close(w.stop)
	w.done.Wait()
	growth := int64(w.peak) - int64(w.base)
	t.Logf("%s: heap in use baseline %.1f MiB, peak %.1f MiB, growth %.1f MiB", what,
		float64(w.base)/(1<<20), float64(w.peak)/(1<<20), float64(growth)/(1<<20))
	if growth > maxHeapGrowth {
		t.Fatalf("%s: heap grew by %d MiB (limit %d MiB)", what, growth>>20, maxHeapGrowth>>20)
	}
}

// TestStreamUpload streams a 100 MiB body through the Write RPC while the
// heap stays bounded: each chunk is written to the socket before the next
// message is received.
func TestStreamUpload(t *testing.T) {
	if testing.Short() {
		t.Skip("100 MiB transfer")
	}
	testutil.CheckLeaks(t)
	up := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		h := sha256.New()
		n, _ := io.Copy(h, r.Body)
		_, _ = io.WriteString(w, strconv.FormatInt(n, 10)+" "+hex.EncodeToString(h.Sum(nil)))
	}))
	t.Cleanup(up.Close)
	g := startGateway(t, rpc.Options{})
	ctx := testCtx(t)
	cr := request(t, g, &pb.RequestOptions{Url: up.URL + "/upload", Method: "POST"})
	id := cr.GetRequestId()
	s := subscribe(t, g, id, 0)

	heap := watchHeap()
	ws, err := g.req.Write(ctx)
	if err != nil {
		t.Fatal(err)
	}
	src := &patternReader{}
	for sent := 0; sent < streamBytes; sent += streamChunk {
		chunk := make([]byte, streamChunk)
		_, _ = src.Read(chunk)
		m := &pb.WriteRequest{Chunk: chunk, End: sent+streamChunk == streamBytes}
		if sent == 0 {
			m.RequestId = id
		}
		if err := ws.Send(m); err != nil {
			t.Fatalf("Send at %d: %v", sent, err)
		}
	}
	wr, err := ws.CloseAndRecv()
	if err != nil {
		t.Fatal(err)
	}
	heap.finish(t, "upload")
	if wr.GetBytesWritten() != streamBytes || !wr.GetEnded() {
		t.Fatalf("WriteResponse %v", wr)
	}
	evs := s.rest()
	want := strconv.Itoa(streamBytes) + " " + patternSum(streamBytes)
	if got := string(body(evs)); got != want {
		t.Fatalf("upstream saw %q, want %q", got, want)
	}
}

// TestStreamDownload reads a 100 MiB response through Events while the heap
// stays bounded: the socket's reads pause while undelivered events fill the
// request's buffer.
func TestStreamDownload(t *testing.T) {
	if testing.Short() {
		t.Skip("100 MiB transfer")
	}
	testutil.CheckLeaks(t)
	up := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Length", strconv.Itoa(streamBytes))
		_, _ = io.CopyN(w, &patternReader{}, streamBytes)
	}))
	t.Cleanup(up.Close)
	g := startGateway(t, rpc.Options{})
	cr := request(t, g, &pb.RequestOptions{Url: up.URL + "/download"})
	id := cr.GetRequestId()
	end(t, g, id, nil)

	heap := watchHeap()
	st, err := g.req.Events(testCtx(t), &pb.EventsRequest{RequestId: id})
	if err != nil {
		t.Fatal(err)
	}
	var (
		n    int64
		h    hash.Hash = sha256.New()
		last string
	)
	for {
		r, err := st.Recv()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		if d := r.GetEvent().GetData(); d != nil {
			n += int64(len(d.GetChunk()))
			h.Write(d.GetChunk())
		}
		last = evName(r.GetEvent())
	}
	heap.finish(t, "download")
	if n != streamBytes || hex.EncodeToString(h.Sum(nil)) != patternSum(streamBytes) || last != "req:close" {
		t.Fatalf("got %d bytes, last event %s", n, last)
	}
}
