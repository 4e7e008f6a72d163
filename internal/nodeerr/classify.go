package nodeerr

import (
	"context"
	"errors"
	"io"
	"net"
	"os"
	"syscall"
)

// errnoCodes maps the errnos a client socket meets to libuv's names.
var errnoCodes = map[syscall.Errno]string{
	syscall.ECONNREFUSED:  ECONNREFUSED,
	syscall.ECONNRESET:    ECONNRESET,
	syscall.ECONNABORTED:  ECONNABORTED,
	syscall.ETIMEDOUT:     ETIMEDOUT,
	syscall.EHOSTUNREACH:  EHOSTUNREACH,
	syscall.ENETUNREACH:   ENETUNREACH,
	syscall.EADDRNOTAVAIL: EADDRNOTAVAIL,
	syscall.EADDRINUSE:    EADDRINUSE,
	syscall.ENOENT:        ENOENT,
	syscall.EACCES:        EACCES,
	syscall.EPIPE:         EPIPE,
}

// Classify turns a Go error from the net, syscall or context packages into
// the *Error Node would report for the same failure, naming syscall and peer.
// An error that already is (or wraps) an *Error is returned as that *Error.
// It returns nil for nil and for errors it cannot classify.
func Classify(err error, syscallName, address string, port int) *Error {
	if err == nil {
		return nil
	}
	if e := As(err); e != nil {
		return e
	}
	code := ""
	var errno syscall.Errno
	var dnsErr *net.DNSError
	switch {
	case errors.As(err, &dnsErr):
		// getaddrinfo: "not found" is ENOTFOUND; a temporary failure or
		// time-out is EAI_AGAIN, as Node reports them.
		code = ENOTFOUND
		if dnsErr.IsTimeout || dnsErr.IsTemporary {
			code = EAI_AGAIN
		}
		return &Error{Code: code, Syscall: "getaddrinfo", Address: dnsErr.Name, Err: err}
	case errors.As(err, &errno):
		code = errnoCodes[errno]
	case errors.Is(err, context.Canceled):
		return &Error{Code: ABORT_ERR, Message: "The operation was aborted", Err: err}
	case errors.Is(err, context.DeadlineExceeded), errors.Is(err, os.ErrDeadlineExceeded):
		code = ETIMEDOUT
	case errors.Is(err, io.EOF), errors.Is(err, io.ErrUnexpectedEOF), errors.Is(err, net.ErrClosed):
		code = ECONNRESET
	}
	if code == "" {
		var ne net.Error
		if errors.As(err, &ne) && ne.Timeout() {
			code = ETIMEDOUT
		}
	}
	if code == "" {
		return nil
	}
	return &Error{Code: code, Syscall: syscallName, Address: address, Port: port, Err: err}
}
