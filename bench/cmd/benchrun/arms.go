package main

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"runtime"
	"slices"
	"time"
)

// arm is one way of making the requests: a client, and whatever sits
// between it and the upstream.
type arm interface {
	// Name is the arm's key in results.json.
	Name() string
	// Run performs one round of j.
	Run(ctx context.Context, j job) (roundResult, error)
	// Procs are the processes to measure; the first is the arm's own
	// (its cpu_us_per_req and rss_kib): the proxy's or gateway's, or the
	// client's where nothing sits in between.
	Procs() []proc
	// Goroutines counts the main process's goroutines; nil when it is
	// not a Go process.
	Goroutines() func(context.Context) (int, error)
	// Release closes the pool a FreshPool job left open.
	Release(ctx context.Context)
	// Close stops the arm's processes and closes its pools.
	Close()
}

// armSlot is one arm of the comparison. Each scenario starts the arm
// afresh (its gateway, proxy or Node process, and its pools) and closes it
// afterwards, so one scenario's memory, goroutines and sockets never show
// in the next one's figures.
type armSlot struct {
	name  string
	skip  string                                 // why the arm cannot run here at all
	start func(ctx context.Context) (arm, error) // nil when skipped
	// scenarios the arm runs in; nil: every one.
	scenarios []string
}

// defaultScenarios are the scenarios an arm runs in when -arms does not
// name the arms; an arm not listed runs in all of them. Named with -arms,
// every arm runs in every scenario selected.
var defaultScenarios = map[string][]string{
	// Tracing costs per request and per span: the small requests show it;
	// the large bodies would only add minutes.
	"gateway_fetch_traced": {"small_get_c1", "small_get_c32", "small_get_fixed_rate"},
}

func (s armSlot) runsIn(scenario string) bool {
	return s.scenarios == nil || slices.Contains(s.scenarios, scenario)
}

// slotsIn returns the slots that run in scenario, in their order.
func slotsIn(slots []armSlot, scenario string) []armSlot {
	var out []armSlot
	for _, s := range slots {
		if s.runsIn(scenario) {
			out = append(out, s)
		}
	}
	return out
}

// httpArm is a Go net/http client in the harness process, straight to the
// upstream (direct) or through a forward proxy (squid).
type httpArm struct {
	name  string
	proxy *url.URL // nil: direct
	procs []proc
	stop  func() // stops the proxy process, if any

	keepAlive, noKeepAlive *http.Transport
	fresh                  *http.Transport // the FreshPool job's, until Release
}

func newHTTPArm(name string, proxy *url.URL, procs []proc) *httpArm {
	a := &httpArm{name: name, proxy: proxy, procs: procs}
	a.keepAlive = a.transport(true)
	a.noKeepAlive = a.transport(false)
	return a
}

// transport is a plain Transport, HTTP/1.1, with a pool deep enough for
// every scenario's concurrency.
func (a *httpArm) transport(keepAlive bool) *http.Transport {
	t := &http.Transport{
		MaxIdleConnsPerHost: 8192,
		IdleConnTimeout:     5 * time.Minute,
		DisableKeepAlives:   !keepAlive,
		DisableCompression:  true,
	}
	if a.proxy != nil {
		t.Proxy = http.ProxyURL(a.proxy)
	}
	return t
}

func (a *httpArm) Name() string  { return a.name }
func (a *httpArm) Procs() []proc { return a.procs }
func (a *httpArm) Goroutines() func(context.Context) (int, error) {
	return func(context.Context) (int, error) { return runtime.NumGoroutine(), nil }
}

func (a *httpArm) Release(context.Context) {
	if a.fresh != nil {
		a.fresh.CloseIdleConnections()
		a.fresh = nil
	}
}

func (a *httpArm) Close() {
	a.Release(context.Background())
	a.keepAlive.CloseIdleConnections()
	a.noKeepAlive.CloseIdleConnections()
	if a.stop != nil {
		a.stop()
	}
}

func (a *httpArm) Run(ctx context.Context, j job) (roundResult, error) {
	t := a.keepAlive
	switch {
	case j.FreshPool:
		a.Release(ctx)
		a.fresh = a.transport(j.KeepAlive)
		t = a.fresh
	case !j.KeepAlive:
		t = a.noKeepAlive
	}
	client := &http.Client{Transport: t}
	return runLoad(ctx, j, func(ctx context.Context) (int64, error) {
		return httpDo(ctx, client, j)
	}), nil
}

// httpDo makes one request and reads the whole response body.
func httpDo(ctx context.Context, c *http.Client, j job) (int64, error) {
	var body io.Reader
	if j.BodyBytes > 0 {
		body = &patternReader{left: j.BodyBytes}
	}
	req, err := http.NewRequestWithContext(ctx, j.Method, j.URL, body)
	if err != nil {
		return 0, err
	}
	if j.BodyBytes > 0 {
		req.ContentLength = j.BodyBytes
	}
	resp, err := c.Do(req)
	if err != nil {
		return 0, err
	}
	defer resp.Body.Close()
	n, err := io.Copy(io.Discard, resp.Body)
	if err != nil {
		return 0, err
	}
	if resp.StatusCode != http.StatusOK {
		return 0, fmt.Errorf("status %d", resp.StatusCode)
	}
	if j.BodyBytes > 0 {
		return j.BodyBytes, nil
	}
	return n, nil
}

// patternBlock is the content of every upload: 64 KiB repeated.
var patternBlock = func() []byte {
	b := make([]byte, 64<<10)
	for i := range b {
		b[i] = 'a' + byte(i%26)
	}
	return b
}()

// patternReader yields left bytes of patternBlock, repeated, without
// allocating: an upload body of any size.
type patternReader struct {
	left int64
	off  int
}

func (r *patternReader) Read(p []byte) (int, error) {
	if r.left <= 0 {
		return 0, io.EOF
	}
	n := copy(p[:min(int64(len(p)), r.left)], patternBlock[r.off:])
	r.off = (r.off + n) % len(patternBlock)
	r.left -= int64(n)
	return n, nil
}
