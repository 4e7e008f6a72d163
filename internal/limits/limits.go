package limits

import (
	"fmt"
	"strconv"
	"sync"
	"time"

	"golang.org/x/time/rate"

	"github.com/httpgateway/httpgateway/internal/nodeerr"
)

// Codes of the limits, as ErrorInfo reasons.
const (
	CodeRateLimited = "ERR_GATEWAY_RATE_LIMITED"    // Options.Rate reached
	CodeTooManyOpen = "ERR_GATEWAY_CALLER_REQUESTS" // Options.MaxRequests reached
	CodeTooManyLive = "ERR_GATEWAY_CALLER_HANDLES"  // Options.MaxHandles reached
)

// Codes of the per-request bounds. Sending the same request again meets
// the same bound, so their errors carry no RetryAfter.
const (
	CodeHeadersTooLarge      = "ERR_GATEWAY_REQUEST_HEADERS_TOO_LARGE" // Options.MaxHeaderBytes
	CodeRequestBodyTooLarge  = "ERR_GATEWAY_REQUEST_BODY_TOO_LARGE"    // Options.MaxRequestBodyBytes
	CodeResponseBodyTooLarge = "ERR_GATEWAY_RESPONSE_BODY_TOO_LARGE"   // Options.MaxResponseBodyBytes
	CodeTunnelTooLong        = "ERR_GATEWAY_TUNNEL_TOO_LONG"           // Options.MaxTunnelDuration
	CodeTunnelTooLarge       = "ERR_GATEWAY_TUNNEL_TOO_LARGE"          // Options.MaxTunnelBytes
)

// concurrencyRetry is the RetryAfter of a concurrency refusal: a slot frees
// when one of the caller's requests ends, which the gateway cannot predict;
// a second is a polite first backoff.
const concurrencyRetry = time.Second

// Options are the per-identity bounds; 0 means no bound.
type Options struct {
	// MaxRequests bounds the requests one identity has alive at once.
	MaxRequests int
	// MaxHandles bounds the request handles one identity has alive.
	MaxHandles int
	// Rate is the requests per second one identity may start, with a burst
	// of max(Rate, 1).
	Rate float64

	// The per-request bounds: each applies to every request of every
	// identity on its own (they are not summed over an identity's
	// requests). The rpc layer counts; the Check methods judge.

	// MaxHeaderBytes bounds the header lines a caller gives one request,
	// each counted as len(name)+len(value)+4 ("Name: value\r\n"),
	// including the Authorization line its credentials become (auth, URL
	// user info, Login).
	MaxHeaderBytes int64
	// MaxRequestBodyBytes bounds the body bytes a caller writes into one
	// request.
	MaxRequestBodyBytes int64
	// MaxResponseBodyBytes bounds the response body bytes one request
	// delivers to its caller, however many streams it reads them with.
	MaxResponseBodyBytes int64
	// MaxTunnelDuration bounds how long one Tunnel stays open.
	MaxTunnelDuration time.Duration
	// MaxTunnelBytes bounds the bytes one Tunnel carries, both directions
	// together.
	MaxTunnelBytes int64
}

// Exceeded is the error of a refused Acquire. It wraps a *nodeerr.Error
// with the code, so it classifies like any gateway error.
type Exceeded struct {
	// RetryAfter is how long to wait before retrying; 0 when a retry
	// would not help.
	RetryAfter time.Duration
	err        *nodeerr.Error
}

func (e *Exceeded) Error() string { return e.err.Error() }
func (e *Exceeded) Unwrap() error { return e.err }

// Limiter holds the per-identity counters. Identities are never forgotten:
// their number is bounded by the configured tokens and issued certificates.
type Limiter struct {
	o Options

	mu sync.Mutex // guards m and every caller's counters
	m  map[string]*caller
}

type caller struct {
	requests, handles int
	rate              *rate.Limiter // nil: no rate bound
}

// New returns a Limiter; a nil *Limiter (or zero Options) limits nothing.
func New(o Options) *Limiter { return &Limiter{o: o, m: map[string]*caller{}} }

func (l *Limiter) callerLocked(id string) *caller {
	c := l.m[id]
	if c == nil {
		c = &caller{}
		if l.o.Rate > 0 {
			c.rate = rate.NewLimiter(rate.Limit(l.o.Rate), max(int(l.o.Rate), 1))
		}
		l.m[id] = c
	}
	return c
}

// Acquire takes a request slot (and a handle slot when handle) for
// identity id, and one token of its rate. release gives the slots back; it
// is idempotent. A refusal consumes nothing.
func (l *Limiter) Acquire(id string, handle bool) (release func(), err error) {
	if l == nil {
		return func() {}, nil
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	c := l.callerLocked(id)
	if l.o.MaxRequests > 0 && c.requests >= l.o.MaxRequests {
		return nil, &Exceeded{RetryAfter: concurrencyRetry,
			err: nodeerr.New(CodeTooManyOpen, "too many requests alive for this caller (max "+strconv.Itoa(l.o.MaxRequests)+")")}
	}
	if handle && l.o.MaxHandles > 0 && c.handles >= l.o.MaxHandles {
		return nil, &Exceeded{RetryAfter: concurrencyRetry,
			err: nodeerr.New(CodeTooManyLive, "too many request handles alive for this caller (max "+strconv.Itoa(l.o.MaxHandles)+")")}
	}
	if c.rate != nil {
		r := c.rate.Reserve()
		if d := r.Delay(); d > 0 {
			r.Cancel() // a refused call does not use up the caller's budget
			return nil, &Exceeded{RetryAfter: d,
				err: nodeerr.New(CodeRateLimited, "request rate over "+strconv.FormatFloat(l.o.Rate, 'g', -1, 64)+"/s for this caller")}
		}
	}
	c.requests++
	if handle {
		c.handles++
	}
	var once sync.Once
	return func() {
		once.Do(func() {
			l.mu.Lock()
			c.requests--
			if handle {
				c.handles--
			}
			l.mu.Unlock()
		})
	}, nil
}

// Bounds returns the limiter's Options (the zero Options for nil).
func (l *Limiter) Bounds() Options {
	if l == nil {
		return Options{}
	}
	return l.o
}

// CheckHeaders judges the header bytes (see Options.MaxHeaderBytes) a
// request would have: nil within the bound, else an *Exceeded with
// CodeHeadersTooLarge.
func (l *Limiter) CheckHeaders(total int64) error {
	return sizeBound(l.Bounds().MaxHeaderBytes).check(total, CodeHeadersTooLarge, "the request headers")
}

// CheckRequestBody judges the body bytes written into one request so far,
// the next chunk included: nil within Options.MaxRequestBodyBytes, else an
// *Exceeded with CodeRequestBodyTooLarge.
func (l *Limiter) CheckRequestBody(total int64) error {
	return sizeBound(l.Bounds().MaxRequestBodyBytes).check(total, CodeRequestBodyTooLarge, "the request body")
}

// CheckResponseBody judges the response body bytes one request delivered
// so far, the next chunk included: nil within Options.MaxResponseBodyBytes,
// else an *Exceeded with CodeResponseBodyTooLarge.
func (l *Limiter) CheckResponseBody(total int64) error {
	return sizeBound(l.Bounds().MaxResponseBodyBytes).check(total, CodeResponseBodyTooLarge, "the response body")
}

// CheckTunnelBytes judges the bytes one Tunnel carried so far, both ways:
// nil within Options.MaxTunnelBytes, else an *Exceeded with
// CodeTunnelTooLarge.
func (l *Limiter) CheckTunnelBytes(total int64) error {
	return sizeBound(l.Bounds().MaxTunnelBytes).check(total, CodeTunnelTooLarge, "the tunnel")
}

// TunnelTooLong is the error of a Tunnel closed at Options.MaxTunnelDuration.
func (l *Limiter) TunnelTooLong() error {
	return &Exceeded{err: nodeerr.New(CodeTunnelTooLong,
		"the tunnel was open longer than the limit of "+l.Bounds().MaxTunnelDuration.String()+" for this caller")}
}

// sizeBound is a byte bound; 0 or less means none.
type sizeBound int64

func (b sizeBound) check(total int64, code, what string) error {
	if b <= 0 || total <= int64(b) {
		return nil
	}
	return &Exceeded{err: nodeerr.New(code, fmt.Sprintf("%s passed the limit of %d bytes for this caller", what, int64(b)))}
}
