package limits

import (
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
