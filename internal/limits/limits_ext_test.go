package limits_test

import (
	"errors"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/httpgateway/httpgateway/internal/limits"
	"github.com/httpgateway/httpgateway/internal/nodeerr"
	"github.com/httpgateway/httpgateway/internal/testutil"
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

// TestSizeBounds: each per-request bound passes totals up to it and
// refuses the first byte past it with its code, RESOURCE_EXHAUSTED-style
// but without a retry hint (the same request meets the same bound); a
// zero bound and a nil Limiter bound nothing.
func TestSizeBounds(t *testing.T) {
	testutil.CheckLeaks(t)
	l := limits.New(limits.Options{MaxHeaderBytes: 10, MaxRequestBodyBytes: 100, MaxResponseBodyBytes: 1000, MaxTunnelBytes: 5,
		MaxTunnelDuration: time.Minute})
	var none *limits.Limiter
	unbounded := limits.New(limits.Options{})
	tests := []struct {
		name  string
		check func(*limits.Limiter, int64) error
		max   int64
		code  string
	}{
		{"headers", (*limits.Limiter).CheckHeaders, 10, limits.CodeHeadersTooLarge},
		{"request body", (*limits.Limiter).CheckRequestBody, 100, limits.CodeRequestBodyTooLarge},
		{"response body", (*limits.Limiter).CheckResponseBody, 1000, limits.CodeResponseBodyTooLarge},
		{"tunnel bytes", (*limits.Limiter).CheckTunnelBytes, 5, limits.CodeTunnelTooLarge},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if err := tt.check(l, tt.max); err != nil {
				t.Errorf("at the bound: %v", err)
			}
			err := tt.check(l, tt.max+1)
			var ex *limits.Exceeded
			if !errors.As(err, &ex) || ex.RetryAfter != 0 || nodeerr.As(err) == nil || nodeerr.As(err).Code != tt.code {
				t.Fatalf("past the bound: %v; want %s without a retry hint", err, tt.code)
			}
			if !strings.Contains(err.Error(), strconv.FormatInt(tt.max, 10)) {
				t.Errorf("message %q does not say the bound", err)
			}
			for _, free := range []*limits.Limiter{none, unbounded} {
				if err := tt.check(free, 1<<62); err != nil {
					t.Errorf("no bound: %v", err)
				}
			}
		})
	}
	err := l.TunnelTooLong()
	if nodeerr.As(err).Code != limits.CodeTunnelTooLong || !strings.Contains(err.Error(), "1m0s") {
		t.Errorf("TunnelTooLong: %v", err)
	}
	if none.Bounds() != (limits.Options{}) || l.Bounds().MaxTunnelDuration != time.Minute {
		t.Errorf("Bounds: %+v %+v", none.Bounds(), l.Bounds())
	}
}
