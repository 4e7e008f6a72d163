package httpengine_test

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"runtime"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/httpgateway/httpgateway/internal/httpengine"
	"github.com/httpgateway/httpgateway/internal/testutil"
)

// saltedBody is the body byte at offset i of the download salted salt:
// any chunk can be checked on its own, and two downloads differ.
func saltedBody(salt, i int) byte {
	j := i + salt*7919
	return byte(j ^ j>>8 ^ j>>16 ^ salt)
}

// checkChunk checks a data event's bytes against the body at its offset.
func checkChunk(salt int, ev *httpengine.Event) error {
	off := int(ev.Bytes) - len(ev.Data)
	for k, b := range ev.Data {
		if want := saltedBody(salt, off+k); b != want {
			return fmt.Errorf("byte %d is %#x, want %#x", off+k, b, want)
		}
	}
	return nil
}

// TestHeldBodyBuffers: with ReuseBodyBuffers, a data event's read buffer
// is reused only once its event left the log and no reader holds it.
// Three downloads run at once (so a buffer given back is soon read into by
// another response), each read by two NextHeld readers, and one also by a
// plain Next reader that keeps every event and checks its data only at the
// end. Readers check each chunk against the body at its offset (a lagging
// reader may find events dropped: the log is bounded), and buffers must
// have been reused, or the test proved nothing.
func TestHeldBodyBuffers(t *testing.T) {
	testutil.CheckLeaks(t)
	const size = 8 << 20
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		salt, _ := strconv.Atoi(r.URL.Query().Get("salt"))
		body := make([]byte, size)
		for i := range body {
			body[i] = saltedBody(salt, i)
		}
		w.Header().Set("Content-Length", strconv.Itoa(size))
		_, _ = w.Write(body)
	}))
	t.Cleanup(srv.Close)
	host, port := hostPort(t, srv.URL)
	a := keepAliveAgent(t)

	// The observer reads each chunk too, as OnEvent may, while readers
	// deliver it.
	o := &checkingObserver{}
	reusedBefore := httpengine.BuffersReused()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	var wg sync.WaitGroup
	for salt := range 3 {
		// A log bound under one read buffer: a chunk leaves the log as soon
		// as it is delivered, while the other reader may still hold it.
		c, err := httpengine.Request(a, false, httpengine.Options{Host: host, Port: port,
			Path: "/?salt=" + strconv.Itoa(salt), ReuseBodyBuffers: true, Observer: o}, 64<<10)
		if err != nil {
			t.Fatal(err)
		}
		if err := c.End(ctx, nil); err != nil {
			t.Fatal(err)
		}
		for r := range 2 {
			wg.Go(func() {
				if err := readHeld(ctx, c, salt); err != nil {
					t.Errorf("download %d, held reader %d: %v", salt, r, err)
				}
			})
		}
		if salt == 0 {
			wg.Go(func() {
				if err := readKept(ctx, c, salt); err != nil {
					t.Errorf("download %d, plain reader: %v", salt, err)
				}
			})
		}
	}
	wg.Wait()
	if err := o.err.Load(); err != nil {
		t.Errorf("observer: %v", *err)
	}
	if httpengine.BuffersReused() == reusedBefore {
		t.Error("no read buffer was reused")
	}
}

// readHeld reads the events with NextHeld, checking each chunk before
// Done, until the log ends (or drops what it has not read yet).
func readHeld(ctx context.Context, c *httpengine.ClientRequest, salt int) error {
	for seq := uint64(1); ; seq++ {
		ev, err := c.Events().NextHeld(ctx, seq)
		if errors.Is(err, io.EOF) || errors.Is(err, httpengine.ErrEventGone) {
			return nil
		}
		if err != nil {
			return err
		}
		// Check, let others run, check again: a buffer reused while held
		// would have changed in between.
		err = checkChunk(salt, &ev)
		runtime.Gosched()
		if err == nil {
			err = checkChunk(salt, &ev)
		}
		c.Events().Done(&ev)
		if err != nil {
			return err
		}
	}
}

// readKept reads the events with plain Next, keeping them, and checks the
// data once it stopped reading.
func readKept(ctx context.Context, c *httpengine.ClientRequest, salt int) error {
	var kept []httpengine.Event
	for seq := uint64(1); ; seq++ {
		ev, err := c.Events().Next(ctx, seq)
		if errors.Is(err, io.EOF) || errors.Is(err, httpengine.ErrEventGone) {
			break
		}
		if err != nil {
			return err
		}
		kept = append(kept, ev)
	}
	for i := range kept {
		if err := checkChunk(salt, &kept[i]); err != nil {
			return err
		}
	}
	return nil
}

// checkingObserver checks each data event's bytes as OnEvent sees them,
// twice with a yield between. Its requests' salt is in the path.
type checkingObserver struct {
	err atomic.Pointer[error]
}

func (o *checkingObserver) OnEvent(ev httpengine.Event) {
	if ev.Kind != httpengine.EventData || len(ev.Data) == 0 {
		return
	}
	// The salt is not in the event: check that the chunk is one of the
	// three downloads' at its offset, the same one both times.
	salt := -1
	for s := range 3 {
		if checkChunk(s, &ev) == nil {
			salt = s
		}
	}
	runtime.Gosched()
	if salt < 0 || checkChunk(salt, &ev) != nil {
		err := fmt.Errorf("the data at %d changed under OnEvent", int(ev.Bytes)-len(ev.Data))
		o.err.CompareAndSwap(nil, &err)
	}
}
