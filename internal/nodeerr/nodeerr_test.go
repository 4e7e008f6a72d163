package nodeerr_test

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"syscall"
	"testing"

	"github.com/httpgateway/httpgateway/internal/nodeerr"
)

func TestClassify(t *testing.T) {
	tests := []struct {
		name string
		err  error
		want string
	}{
		{name: "refused", err: &net.OpError{Op: "dial", Err: &osSyscallErr{syscall.ECONNREFUSED}}, want: nodeerr.ECONNREFUSED},
		{name: "reset", err: fmt.Errorf("read: %w", syscall.ECONNRESET), want: nodeerr.ECONNRESET},
		{name: "dns not found", err: &net.DNSError{Name: "nope.invalid", IsNotFound: true}, want: nodeerr.ENOTFOUND},
		{name: "dns temporary", err: &net.DNSError{Name: "x", IsTemporary: true}, want: nodeerr.EAI_AGAIN},
		{name: "canceled", err: context.Canceled, want: nodeerr.ABORT_ERR},
		{name: "deadline", err: context.DeadlineExceeded, want: nodeerr.ETIMEDOUT},
		{name: "eof", err: io.EOF, want: nodeerr.ECONNRESET},
		{name: "already node", err: fmt.Errorf("wrapped: %w", nodeerr.New(nodeerr.HPE_HEADER_OVERFLOW, "Header overflow")), want: nodeerr.HPE_HEADER_OVERFLOW},
		{name: "unknown", err: errors.New("something else"), want: ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := nodeerr.Code(tt.err); got != tt.want {
				t.Fatalf("Code(%v) = %q, want %q", tt.err, got, tt.want)
			}
		})
	}
}

type osSyscallErr struct{ errno syscall.Errno }

func (e *osSyscallErr) Error() string { return "connect: " + e.errno.Error() }
func (e *osSyscallErr) Unwrap() error { return e.errno }

func TestErrorFormatAndIs(t *testing.T) {
	e := nodeerr.Classify(syscall.ECONNREFUSED, "connect", "127.0.0.1", 9)
	if got, want := e.Error(), "connect ECONNREFUSED 127.0.0.1:9"; got != want {
		t.Fatalf("Error() = %q, want %q", got, want)
	}
	if !errors.Is(fmt.Errorf("x: %w", e), nodeerr.New(nodeerr.ECONNREFUSED, "")) {
		t.Fatal("errors.Is by code failed")
	}
	if errors.Is(e, nodeerr.New(nodeerr.ECONNRESET, "")) {
		t.Fatal("errors.Is matched a different code")
	}
	if !errors.Is(e, syscall.ECONNREFUSED) {
		t.Fatal("cause not reachable through Unwrap")
	}
}
