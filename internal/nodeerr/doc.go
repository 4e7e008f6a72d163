// Package nodeerr carries Node.js error codes as data on Go errors.
//
// Node's callers branch on err.code ("ECONNRESET", "ERR_INVALID_HTTP_TOKEN",
// "HPE_HEADER_OVERFLOW", ...). Every error the engine or the agent pool reports
// to a caller is, or wraps, an *Error whose Code is the code Node would have
// used, plus the syscall/address/port fields Node's system errors carry.
//
// The package also classifies plain Go errors (syscall errnos, *net.DNSError,
// timeouts) into those codes, so that a dial failure becomes ECONNREFUSED
// exactly as net.Socket would report it.
//
// It imports nothing of this module: every other internal package may use it.
package nodeerr
