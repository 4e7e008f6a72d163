package httpengine

import "testing"

// SetOriginCheckedHook makes f run each time a goroutine that acquireFor
// started for a blocking origin check has done its work (the check, and
// the Acquire if any), for the goroutines started until the test ends:
// tests wait on it instead of guessing when nothing more can happen.
func SetOriginCheckedHook(t testing.TB, f func()) {
	testHookOriginChecked.Store(&f)
	t.Cleanup(func() { testHookOriginChecked.Store(nil) })
}

// SetAcquiredHook makes f run in each goroutine acquireFor starts for a
// blocking origin check, between the pool's Acquire and the request's
// lock, until the test ends.
func SetAcquiredHook(t testing.TB, f func()) {
	testHookAcquired.Store(&f)
	t.Cleanup(func() { testHookAcquired.Store(nil) })
}

// BuffersReused is how many read buffers event logs have given back so
// far (all requests).
func BuffersReused() uint64 { return buffersReused.Load() }

// SetBeforeWriteHook makes f run before each socket write of a request's
// bytes (without the request's lock; n is the write's size) until the
// test ends.
func SetBeforeWriteHook(t testing.TB, f func(n int)) {
	testHookBeforeWrite.Store(&f)
	t.Cleanup(func() { testHookBeforeWrite.Store(nil) })
}
