package wire

import (
	"errors"
	"io"

	"github.com/httpgateway/httpgateway/internal/nodeerr"
)

// parseError is how Node surfaces an llhttp failure: code HPE_*, message
// "Parse Error: <llhttp reason>" (see Node's _http_client socketOnData and
// node_http_parser.cc, which splits "CODE:reason" user errors the same way).
func parseError(code, reason string) error {
	return nodeerr.New(code, "Parse Error: "+reason)
}

func errHeaderOverflow() error {
	return parseError(nodeerr.HPE_HEADER_OVERFLOW, "Header overflow")
}

// abortedErr is the error of a body cut short: Node's IncomingMessage emits
// 'aborted' and then an error with code ECONNRESET and message "aborted".
// io.EOF and io.ErrUnexpectedEOF are deliberately not kept as the cause, so
// that errors.Is(err, io.EOF) can never mistake a short body for a complete
// one. Other read errors (deadlines, resets) stay reachable with errors.Is.
func abortedErr(cause error) error {
	if cause == nil || errors.Is(cause, io.EOF) || errors.Is(cause, io.ErrUnexpectedEOF) {
		return nodeerr.New(nodeerr.ECONNRESET, "aborted")
	}
	if e := nodeerr.As(cause); e != nil && e.Code == nodeerr.ECONNRESET && e.Message == "aborted" {
		return cause
	}
	return nodeerr.Wrap(nodeerr.ECONNRESET, "aborted", cause)
}

// hangUpErr is the error of a connection that ends before a complete
// response head: Node's socketOnEnd reports ECONNRESET "socket hang up".
// The cause is io.EOF when not a byte of the head was read (the engine may
// care, e.g. for a reused keep-alive socket), io.ErrUnexpectedEOF otherwise.
// Read errors other than EOF are returned unchanged for the engine to
// classify.
func hangUpErr(err error, partial bool) error {
	if !errors.Is(err, io.EOF) {
		return err
	}
	cause := io.EOF
	if partial {
		cause = io.ErrUnexpectedEOF
	}
	return nodeerr.Wrap(nodeerr.ECONNRESET, "socket hang up", cause)
}
