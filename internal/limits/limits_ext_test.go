package limits_test

import (
	"errors"
	"testing"

	"github.com/httpgateway/httpgateway/internal/limits"
	"github.com/httpgateway/httpgateway/internal/nodeerr"
)

func TestAcquire(t *testing.T) {
	l := limits.New(limits.Options{MaxRequests: 2, MaxHandles: 1})
	r1, err := l.Acquire("a", true)
	if err != nil {
		t.Fatal(err)
	}
	_, err = l.Acquire("a", true)
	var ex *limits.Exceeded
	if !errors.As(err, &ex) || ex.RetryAfter <= 0 || nodeerr.As(err).Code != limits.CodeTooManyLive {
		t.Fatalf("second handle: %v; want %s with a retry hint", err, limits.CodeTooManyLive)
	}
	r2, err := l.Acquire("a", false) // a Fetch still fits
	if err != nil {
		t.Fatal(err)
	}
	if _, err := l.Acquire("a", false); nodeerr.As(err) == nil || nodeerr.As(err).Code != limits.CodeTooManyOpen {
		t.Fatalf("third request: %v; want %s", err, limits.CodeTooManyOpen)
	}
	if _, err := l.Acquire("b", true); err != nil {
		t.Errorf("another identity: %v", err)
	}
	r1()
	r1() // idempotent: must not free a second slot
	r2()
	if _, err := l.Acquire("a", true); err != nil {
		t.Errorf("after release: %v", err)
	}
	if _, err := l.Acquire("a", false); err != nil {
		t.Errorf("second slot after release: %v", err)
	}
	if _, err := l.Acquire("a", false); err == nil {
		t.Error("release freed more than it took")
	}
}

func TestNilLimiter(t *testing.T) {
	var l *limits.Limiter
	release, err := l.Acquire("a", true)
	if err != nil {
		t.Fatal(err)
	}
	release()
}
