package httpengine_test

import (
	"bufio"
	"context"
	"io"
	"net"
	"sync"
	"testing"
	"time"

	"github.com/httpgateway/httpgateway/internal/httpengine"
	"github.com/httpgateway/httpgateway/internal/testutil"
)

// TestUploadProgress: Electron's getUploadProgress observed mid-upload on
// an upstream that stops reading, and equal to the body size at the end.
func TestUploadProgress(t *testing.T) {
	testutil.CheckLeaks(t)
	const size = 8 << 20
	release := make(chan struct{})
	var once sync.Once
	unblock := func() { once.Do(func() { close(release) }) }
	u := testutil.NewUpstream(t, func(c net.Conn) {
		br := bufio.NewReader(c)
		if _, err := io.CopyN(io.Discard, br, 64<<10); err != nil { // the head and a little body
			return
		}
		<-release // then stall: the socket buffers fill up
		_, _ = io.Copy(io.Discard, br)
	})
	t.Cleanup(unblock) // registered after the upstream: runs before its cleanup, which waits for the script
	a := keepAliveAgent(t)
	c, err := httpengine.Request(a, false, httpengine.Options{Host: "127.0.0.1", Port: u.Port, Method: "PUT",
		Headers: []httpengine.Header{{Name: "Content-Length", Value: "8388608"}}}, 0)
	if err != nil {
		t.Fatal(err)
	}
	if p := c.UploadProgress(); p.Started || p.Current != 0 || !p.Active {
		t.Fatalf("before any write: %+v", p)
	}
	wrote := make(chan error, 1)
	go func() { // ends when the whole body is queued or the request fails
		chunk := make([]byte, 64<<10)
		for i := 0; i < size/len(chunk); i++ {
			if err := c.Write(context.Background(), append([]byte(nil), chunk...)); err != nil {
				wrote <- err
				return
			}
		}
		wrote <- c.End(context.Background(), nil)
	}()

	// Mid-upload: the upstream stalls, so progress stops between 0 and the
	// total (polled with a bound, not slept on).
	deadline := time.Now().Add(10 * time.Second)
	var mid httpengine.UploadProgress
	for {
		mid = c.UploadProgress()
		if mid.Started && mid.Current > 0 {
			prev := mid.Current
			time.Sleep(20 * time.Millisecond) // polling: progress has stalled when it stops moving
			if mid = c.UploadProgress(); mid.Current == prev {
				break
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("no stalled progress seen: %+v", mid)
		}
	}
	if !mid.Active || mid.Current >= size || mid.Total != size {
		t.Fatalf("mid-upload progress %+v", mid)
	}
	unblock()
	if err := <-wrote; err != nil {
		t.Fatal(err)
	}
	waitEvent(t, c, httpengine.EventFinish, httpengine.TargetRequest)
	if p := c.UploadProgress(); p.Current != size || p.Total != size || !p.Started {
		t.Fatalf("final progress %+v", p)
	}
	c.Destroy(nil) // the upstream never answers
	events(t, c)
}
