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
	before := fdTargets()
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
				t.Errorf("leak: goroutines %d (baseline %d), fds %d (baseline %d); new fds: %v\n%s", g, g0, fd, fd0, newFDs(before), filterStacks(string(buf[:n])))
				return
			}
			// Polling a condition with a bounded deadline, not sleeping to
			// synchronise: goroutines end asynchronously after Close.
			time.Sleep(5 * time.Millisecond)
		}
	})
}

// openFDs counts open file descriptors other than pipes. Pipes are left
// out because Go's splice path (io.Copy between TCP connections) keeps a
// cache of pipe pairs that closes only when the garbage collector frees them
// (internal/poll's splice pipe pool); nothing in this module opens a pipe.
func openFDs() int {
	n := 0
	for _, target := range fdTargets() {
		if !strings.HasPrefix(target, "pipe:") {
			n++
		}
	}
	return n
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

// fdTargets maps each open fd to what it points at.
func fdTargets() map[string]string {
	out := map[string]string{}
	ents, _ := os.ReadDir("/proc/self/fd")
	for _, e := range ents {
		target, _ := os.Readlink("/proc/self/fd/" + e.Name())
		out[e.Name()] = target
	}
	return out
}

// newFDs lists fds open now that were not open (or pointed elsewhere) before.
func newFDs(before map[string]string) []string {
	var out []string
	for fd, target := range fdTargets() {
		if before[fd] != target && !strings.HasPrefix(target, "pipe:") {
			out = append(out, fd+"->"+target)
		}
	}
	return out
}
