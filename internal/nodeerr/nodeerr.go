package nodeerr

import (
	"errors"
	"fmt"
	"strconv"
)

// Error is an error as Node reports it: a code callers can branch on, a
// message, and for system errors the syscall and the peer it concerned.
type Error struct {
	// Code is Node's error code, e.g. "ECONNREFUSED" or "HPE_INVALID_CHUNK_SIZE".
	Code string
	// Message is the human-readable message, as Node words it where it can.
	Message string
	// Syscall is the failing system call for system errors ("connect", "read",
	// "getaddrinfo"), empty otherwise.
	Syscall string
	// Address and Port name the peer of a failing system call, if known.
	Address string
	Port    int
	// Err is the underlying cause, if any; it is reachable through errors.Unwrap.
	Err error
}

// New returns an *Error with the given code and message.
func New(code, message string) *Error {
	return &Error{Code: code, Message: message}
}

// Errorf returns an *Error whose message is formatted. A %w verb keeps its
// operand as the cause.
func Errorf(code, format string, args ...any) *Error {
	cause := fmt.Errorf(format, args...)
	e := &Error{Code: code, Message: cause.Error()}
	if errors.Unwrap(cause) != nil {
		e.Err = errors.Unwrap(cause)
	}
	return e
}

// Wrap returns an *Error with code and message that keeps err as its cause.
func Wrap(code, message string, err error) *Error {
	return &Error{Code: code, Message: message, Err: err}
}

// Error formats the error the way Node prints system errors:
// "connect ECONNREFUSED 127.0.0.1:8080", or "<message>" with the code appended
// for the others.
func (e *Error) Error() string {
	if e.Syscall != "" && e.Message == "" {
		s := e.Syscall + " " + e.Code
		if e.Address != "" {
			s += " " + e.Address
			if e.Port != 0 {
				s += ":" + strconv.Itoa(e.Port)
			}
		}
		return s
	}
	if e.Message == "" {
		return e.Code
	}
	return e.Message + " (" + e.Code + ")"
}

// Unwrap returns the cause.
func (e *Error) Unwrap() error { return e.Err }

// Is reports whether target is an *Error with the same code, so that
// errors.Is(err, nodeerr.New("ECONNRESET", "")) matches any ECONNRESET.
func (e *Error) Is(target error) bool {
	var t *Error
	if errors.As(target, &t) {
		return t.Code == e.Code
	}
	return false
}

// WithPeer returns a copy of e that names the syscall and peer.
func (e *Error) WithPeer(syscall, address string, port int) *Error {
	c := *e
	c.Syscall, c.Address, c.Port = syscall, address, port
	return &c
}

// Code returns the Node code of err: the Code of the first *Error in its
// chain, else the code Classify finds, else "".
func Code(err error) string {
	if err == nil {
		return ""
	}
	var e *Error
	if errors.As(err, &e) && e != nil {
		return e.Code
	}
	if c := Classify(err, "", "", 0); c != nil {
		return c.Code
	}
	return ""
}

// As returns the first *Error in err's chain, or nil.
func As(err error) *Error {
	var e *Error
	if errors.As(err, &e) && e != nil {
		return e
	}
	return nil
}
