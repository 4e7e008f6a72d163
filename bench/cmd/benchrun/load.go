package main

import (
	"context"
	"sync"
	"sync/atomic"
	"time"
)

// job is what one round asks an arm to do. The Node arms receive it as
// JSON, so the field names are the contract with bench/node/loadgen.js.
type job struct {
	Scenario string `json:"scenario"`
	// Mode: "closed" (Concurrency workers back to back for DurationMS, each
	// doing at least MinPerWorker requests), "rate" (open loop: Rate
	// requests per second for DurationMS, latency measured from each
	// request's scheduled start) or "burst" (Count requests at once).
	Mode         string  `json:"mode"`
	Method       string  `json:"method"`
	URL          string  `json:"url"`
	Concurrency  int     `json:"concurrency"`
	DurationMS   int64   `json:"duration_ms"`
	MinPerWorker int     `json:"min_per_worker"`
	Rate         float64 `json:"rate"`
	Count        int     `json:"count"`
	BodyBytes    int64   `json:"body_bytes"` // request body (uploads)
	KeepAlive    bool    `json:"keep_alive"`
	// FreshPool: use a new pool (agent, transport) for this job and keep
	// it, with its idle sockets, until the arm's Release.
	FreshPool bool `json:"fresh_pool"`
	// Large: a body too big to hold comfortably per message; the streaming
	// gateway arm uses the handle RPCs (Request, Write, Events) for it.
	Large     bool  `json:"large"`
	TimeoutMS int64 `json:"timeout_ms"` // bound on one request
}

// roundResult is what one run of a job produced.
type roundResult struct {
	Requests  int64     `json:"requests"`
	Errors    int64     `json:"errors"`
	Bytes     int64     `json:"bytes"` // body bytes moved (down or up)
	ElapsedNS int64     `json:"elapsed_ns"`
	Latencies latencies `json:"lat"` // µs, successful requests only
	ErrSample string    `json:"err_sample"`
}

// doFunc performs one request and returns the body bytes it moved.
type doFunc func(ctx context.Context) (int64, error)

// collector gathers results from many goroutines.
type collector struct {
	requests, errors, bytes atomic.Int64

	mu        sync.Mutex // guards lat and errSample
	lat       latencies
	errSample string
}

func (c *collector) record(d time.Duration, n int64, err error) {
	c.requests.Add(1)
	if err != nil {
		c.errors.Add(1)
		c.mu.Lock()
		if c.errSample == "" {
			c.errSample = err.Error()
		}
		c.mu.Unlock()
		return
	}
	c.bytes.Add(n)
	c.mu.Lock()
	c.lat = append(c.lat, d.Microseconds())
	c.mu.Unlock()
}

func (c *collector) result(elapsed time.Duration) roundResult {
	c.mu.Lock()
	defer c.mu.Unlock()
	return roundResult{
		Requests: c.requests.Load(), Errors: c.errors.Load(), Bytes: c.bytes.Load(),
		ElapsedNS: elapsed.Nanoseconds(), Latencies: c.lat, ErrSample: c.errSample,
	}
}

// runLoad drives do as the job's mode says, from the harness process (the
// Go arms). Every goroutine it starts has ended when it returns.
func runLoad(ctx context.Context, j job, do doFunc) roundResult {
	var c collector
	timeout := time.Duration(j.TimeoutMS) * time.Millisecond
	one := func(start time.Time) {
		rctx, cancel := context.WithTimeout(ctx, timeout)
		n, err := do(rctx)
		cancel()
		c.record(time.Since(start), n, err)
	}
	start := time.Now()
	deadline := start.Add(time.Duration(j.DurationMS) * time.Millisecond)
	var wg sync.WaitGroup
	switch j.Mode {
	case "closed":
		for range j.Concurrency {
			wg.Go(func() {
				for done := 0; ctx.Err() == nil && (time.Now().Before(deadline) || done < j.MinPerWorker); done++ {
					one(time.Now())
				}
			})
		}
	case "burst":
		for range j.Count {
			wg.Go(func() { one(time.Now()) })
		}
	case "rate":
		// Open loop: request i is due at start + i/rate whether or not
		// earlier ones finished; its latency counts from when it was due,
		// so a stall shows up in the figures (no coordinated omission).
		interval := time.Duration(float64(time.Second) / j.Rate)
		for i := 0; ctx.Err() == nil; i++ {
			due := start.Add(time.Duration(i) * interval)
			if !due.Before(deadline) {
				break
			}
			if d := time.Until(due); d > 0 {
				time.Sleep(d)
			}
			wg.Go(func() { one(due) })
		}
	}
	wg.Wait()
	return c.result(time.Since(start))
}
