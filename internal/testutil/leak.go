package testutil

import (
	"os"
	"runtime"
	"strings"
	"testing"
	"time"
)

// CheckLeaks records the goroutine and open-fd counts now and, at cleanup,
// waits (bounded) for both to come back to that baseline, failing the test
// with a goroutine dump if they do not. Call it first in a test, so that its
// cleanup runs last, after every server the test started was closed.
func CheckLeaks(t testing.TB) {
	t.Helper()
	g0, fd0 := runtime.NumGoroutine(), openFDs()
	t.Cleanup(func() {
		deadline := time.Now().Add(10 * time.Second)
		for {
			g, fd := runtime.NumGoroutine(), openFDs()
			if g <= g0 && fd <= fd0 {
				return
			}
			if time.Now().After(deadline) {
				buf := make([]byte, 1<<20)
				n := runtime.Stack(buf, true)
				t.Errorf("leak: goroutines %d (baseline %d), fds %d (baseline %d)\n%s", g, g0, fd, fd0, filterStacks(string(buf[:n])))
				return
			}
			// Polling a condition with a bounded deadline, not sleeping to
			// synchronise: goroutines end asynchronously after Close.
			time.Sleep(5 * time.Millisecond)
		}
	})
}

func openFDs() int {
	ents, err := os.ReadDir("/proc/self/fd")
	if err != nil {
		return 0
	}
	return len(ents)
}

// filterStacks drops the testing framework's own goroutines from a dump.
func filterStacks(s string) string {
	var keep []string
	for _, g := range strings.Split(s, "\n\n") {
		if strings.Contains(g, "testing.(*T).Run") || strings.Contains(g, "testing.tRunner") && !strings.Contains(g, "httpgateway") {
			continue
		}
		keep = append(keep, g)
	}
	return strings.Join(keep, "\n\n")
}
