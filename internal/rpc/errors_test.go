package rpc

import (
	"context"
	"errors"
	"fmt"
	"testing"
	"time"

	"google.golang.org/genproto/googleapis/rpc/errdetails"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/httpgateway/httpgateway/internal/limits"
	"github.com/httpgateway/httpgateway/internal/nodeerr"
)

// mustExceed runs f on a Limiter of o twice and returns the second
// (refused) call's error.
func mustExceed(o limits.Options, f func(*limits.Limiter) error) error {
	l := limits.New(o)
	_ = f(l)
	return f(l)
}

// bounds has every per-request bound at 1 byte (and a minute for Tunnels).
var bounds = limits.New(limits.Options{MaxHeaderBytes: 1, MaxRequestBodyBytes: 1, MaxResponseBodyBytes: 1,
	MaxTunnelBytes: 1, MaxTunnelDuration: time.Minute})

func TestToStatus(t *testing.T) {
	tests := []struct {
		name   string
		err    error
		code   codes.Code
		reason string
	}{
		{"invalid token", nodeerr.New(nodeerr.ERR_INVALID_HTTP_TOKEN, "x"), codes.InvalidArgument, "ERR_INVALID_HTTP_TOKEN"},
		{"invalid char", nodeerr.New(nodeerr.ERR_INVALID_CHAR, "x"), codes.InvalidArgument, "ERR_INVALID_CHAR"},
		{"unescaped", nodeerr.New(nodeerr.ERR_UNESCAPED_CHARACTERS, "x"), codes.InvalidArgument, "ERR_UNESCAPED_CHARACTERS"},
		{"header value", nodeerr.New(nodeerr.ERR_HTTP_INVALID_HEADER_VALUE, "x"), codes.InvalidArgument, "ERR_HTTP_INVALID_HEADER_VALUE"},
		{"out of range", nodeerr.New(nodeerr.ERR_OUT_OF_RANGE, "x"), codes.InvalidArgument, "ERR_OUT_OF_RANGE"},
		{"headers sent", nodeerr.New(nodeerr.ERR_HTTP_HEADERS_SENT, "x"), codes.FailedPrecondition, "ERR_HTTP_HEADERS_SENT"},
		{"write after end", nodeerr.New(nodeerr.ERR_STREAM_WRITE_AFTER_END, "x"), codes.FailedPrecondition, "ERR_STREAM_WRITE_AFTER_END"},
		{"destroyed", nodeerr.New(nodeerr.ERR_STREAM_DESTROYED, "x"), codes.FailedPrecondition, "ERR_STREAM_DESTROYED"},
		{"not found", notFound("r_x"), codes.NotFound, codeRequestNotFound},
		{"egress", nodeerr.New(nodeerr.ERR_GATEWAY_EGRESS_DENIED, "x"), codes.PermissionDenied, "ERR_GATEWAY_EGRESS_DENIED"},
		{"cap", gwError(codeTooManyRequests, "x"), codes.ResourceExhausted, codeTooManyRequests},
		{"too large", tooLarge(1), codes.ResourceExhausted, codeResponseTooLarge},
		{"timeout", nodeerr.New(nodeerr.ETIMEDOUT, ""), codes.DeadlineExceeded, "ETIMEDOUT"},
		{"refused", &nodeerr.Error{Code: nodeerr.ECONNREFUSED, Syscall: "connect", Address: "127.0.0.1", Port: 1}, codes.Unavailable, "ECONNREFUSED"},
		{"reset", nodeerr.New(nodeerr.ECONNRESET, "socket hang up"), codes.Unavailable, "ECONNRESET"},
		{"dns", nodeerr.New(nodeerr.ENOTFOUND, ""), codes.Unavailable, "ENOTFOUND"},
		{"parse", nodeerr.New(nodeerr.HPE_INVALID_CHUNK_SIZE, "x"), codes.Unavailable, "HPE_INVALID_CHUNK_SIZE"},
		{"tls", nodeerr.New(nodeerr.CERT_HAS_EXPIRED, "x"), codes.Unavailable, "CERT_HAS_EXPIRED"},
		{"abort", nodeerr.New(nodeerr.ABORT_ERR, "x"), codes.Canceled, "ABORT_ERR"},
		{"unimplemented", unimplemented("x"), codes.Unimplemented, codeUnimplemented},
		{"wrapped", fmt.Errorf("ctx: %w", nodeerr.New(nodeerr.ERR_HTTP_HEADERS_SENT, "x")), codes.FailedPrecondition, "ERR_HTTP_HEADERS_SENT"},
		{"context canceled", context.Canceled, codes.Canceled, ""},
		{"deadline", context.DeadlineExceeded, codes.DeadlineExceeded, ""},
		{"status passes", status.Error(codes.Aborted, "x"), codes.Aborted, ""},
		{"unknown Go error", errors.New("boom"), codes.Internal, ""},
		{"unknown code", nodeerr.New("EWHATEVER_NEW", "x"), codes.Unavailable, "EWHATEVER_NEW"},
		{"unknown ERR code", nodeerr.New("ERR_SOMETHING", "x"), codes.Unknown, "ERR_SOMETHING"},
		{"caller requests", mustExceed(limits.Options{MaxRequests: 1}, func(l *limits.Limiter) error { _, err := l.Acquire("a", false); return err }),
			codes.ResourceExhausted, limits.CodeTooManyOpen},
		{"header bound", bounds.CheckHeaders(2), codes.ResourceExhausted, limits.CodeHeadersTooLarge},
		{"request body bound", bounds.CheckRequestBody(2), codes.ResourceExhausted, limits.CodeRequestBodyTooLarge},
		{"response body bound", bounds.CheckResponseBody(2), codes.ResourceExhausted, limits.CodeResponseBodyTooLarge},
		{"tunnel bytes bound", bounds.CheckTunnelBytes(2), codes.ResourceExhausted, limits.CodeTunnelTooLarge},
		{"tunnel duration bound", bounds.TunnelTooLong(), codes.ResourceExhausted, limits.CodeTunnelTooLong},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := toStatus(tt.err)
			st, _ := status.FromError(err)
			if st.Code() != tt.code {
				t.Fatalf("code %v, want %v", st.Code(), tt.code)
			}
			var info *errdetails.ErrorInfo
			for _, d := range st.Details() {
				if i, ok := d.(*errdetails.ErrorInfo); ok {
					info = i
				}
			}
			if tt.reason == "" {
				return
			}
			if info == nil || info.GetReason() != tt.reason || info.GetDomain() != "httpgateway" {
				t.Fatalf("ErrorInfo %v, want reason %s", info, tt.reason)
			}
			// RetryInfo only where a retry may succeed: a concurrency slot
			// or the rate, never a per-request bound.
			var retry *errdetails.RetryInfo
			for _, d := range st.Details() {
				if r, ok := d.(*errdetails.RetryInfo); ok {
					retry = r
				}
			}
			if wantRetry := tt.reason == limits.CodeTooManyOpen; (retry != nil) != wantRetry {
				t.Fatalf("RetryInfo %v, want one: %t", retry, wantRetry)
			}
		})
	}
	if toStatus(nil) != nil {
		t.Fatal("nil error became a status")
	}
	st, _ := status.FromError(toStatus(&nodeerr.Error{Code: nodeerr.ECONNREFUSED, Syscall: "connect", Address: "127.0.0.1", Port: 1}))
	info := st.Details()[0].(*errdetails.ErrorInfo)
	if m := info.GetMetadata(); m["syscall"] != "connect" || m["address"] != "127.0.0.1" || m["port"] != "1" {
		t.Fatalf("metadata %v", m)
	}
}
