package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"math"
	"runtime/debug"
	"time"
)

// scenario is one workload, run against every arm in interleaved rounds.
type scenario struct {
	name  string
	quick bool // part of -quick
	// job builds the round's job; rate is the fixed rate (only
	// small_get_fixed_rate uses it).
	job func(e *env, rate float64) job
	// warm: before the first round, each arm makes small keep-alive
	// requests at the scenario's concurrency, so pools and JITs are warm.
	warm bool
	// idle: after the round, wait idleWait and report memory, goroutines
	// and the pool's sockets as they are then (idle_1k).
	idle bool
	// perRequestRSS: report (peak RSS - RSS before) / requests (slow_5k).
	perRequestRSS bool
}

// env is what scenarios need to know of the run.
type env struct {
	up       *upstreams
	duration time.Duration
	rounds   int
	log      io.Writer
	// profileDir, when set, receives a CPU profile of each gateway round.
	profileDir string
}

const idleWait = time.Second

func (e *env) ms() int64 { return e.duration.Milliseconds() }

const mib = 1 << 20

// scenarios in the order they run. small_get_c32 comes before
// small_get_fixed_rate, whose rate derives from it.
var scenarios = []scenario{
	{name: "small_get_c1", warm: true, job: func(e *env, _ float64) job {
		return job{Mode: "closed", Method: "GET", URL: e.up.static + "/small", Concurrency: 1,
			DurationMS: e.ms(), KeepAlive: true, TimeoutMS: 10_000}
	}},
	{name: "small_get_c32", quick: true, warm: true, job: func(e *env, _ float64) job {
		return job{Mode: "closed", Method: "GET", URL: e.up.static + "/small", Concurrency: 32,
			DurationMS: e.ms(), KeepAlive: true, TimeoutMS: 10_000}
	}},
	{name: "small_get_fixed_rate", warm: true, job: func(e *env, rate float64) job {
		return job{Mode: "rate", Method: "GET", URL: e.up.static + "/small", Rate: rate, Concurrency: 32,
			DurationMS: e.ms(), KeepAlive: true, TimeoutMS: 10_000}
	}},
	{name: "download_1m_c8", warm: true, job: func(e *env, _ float64) job {
		return job{Mode: "closed", Method: "GET", URL: e.up.static + "/1m", Concurrency: 8,
			DurationMS: e.ms(), KeepAlive: true, TimeoutMS: 30_000}
	}},
	{name: "download_100m_c1", warm: true, job: func(e *env, _ float64) job {
		return job{Mode: "closed", Method: "GET", URL: e.up.static + "/100m", Concurrency: 1, MinPerWorker: 1,
			DurationMS: e.ms(), KeepAlive: true, Large: true, TimeoutMS: 120_000}
	}},
	{name: "download_100m_c4", quick: true, warm: true, job: func(e *env, _ float64) job {
		return job{Mode: "closed", Method: "GET", URL: e.up.static + "/100m", Concurrency: 4, MinPerWorker: 1,
			DurationMS: e.ms(), KeepAlive: true, Large: true, TimeoutMS: 120_000}
	}},
	{name: "upload_100m", warm: true, job: func(e *env, _ float64) job {
		return job{Mode: "closed", Method: "PUT", URL: e.up.dynamic + "/upload", Concurrency: 1, MinPerWorker: 1,
			DurationMS: e.ms(), KeepAlive: true, Large: true, BodyBytes: 100 * mib, TimeoutMS: 120_000}
	}},
	{name: "slow_5k", perRequestRSS: true, job: func(e *env, _ float64) job {
		// A pool of its own, closed after the round: 5,000 sockets left
		// open by one arm would crowd the upstream's descriptors for the next.
		return job{Mode: "burst", Method: "GET", URL: e.up.dynamic + "/slow?ms=1000", Count: 5000,
			KeepAlive: true, FreshPool: true, TimeoutMS: 60_000}
	}},
	{name: "churn", job: func(e *env, _ float64) job {
		return job{Mode: "closed", Method: "GET", URL: e.up.static + "/small", Concurrency: 8,
			DurationMS: e.ms(), KeepAlive: false, TimeoutMS: 10_000}
	}},
	{name: "idle_1k", idle: true, job: func(e *env, _ float64) job {
		// The upstream holds each request 300 ms, so the 1,000 overlap and
		// each needs a socket of its own; they then sit idle in the pool.
		return job{Mode: "burst", Method: "GET", URL: e.up.dynamic + "/slow?ms=300", Count: 1000,
			KeepAlive: true, FreshPool: true, TimeoutMS: 30_000}
	}},
}

// accum gathers one (arm, scenario)'s rounds.
type accum struct {
	rounds                  int
	requests, errors, bytes int64
	elapsed                 time.Duration
	lat                     latencies
	cpu                     map[string]time.Duration
	rss, rssPerReq          int64
	gor                     int
	haveGor                 bool
	idleSockets             int
	idleGorAdded            int // idle_1k: goroutines added while the sockets sat idle
	haveIdleGor             bool
	errSample               string
	// countsSpans: the arm's gateway exports spans (spanCounter); spans
	// is how many its sink received during the rounds, serverSpans how
	// many of them were SERVER spans (one per call), spanErr the first
	// failure to ask.
	countsSpans bool
	spans       int64
	serverSpans int64
	spanErr     error
}

// runScenario starts every arm, runs sc against them interleaved (round 1
// of A, B, C, then round 2 of A, B, C, ...) so that drift in the machine
// (other load, thermal state) spreads over all arms alike, then closes them.
func runScenario(ctx context.Context, e *env, sc scenario, slots []armSlot, rate float64) []*Result {
	arms := make([]arm, len(slots))
	skips := make([]string, len(slots))
	acc := make([]*accum, len(slots))
	for i, s := range slots {
		skips[i] = s.skip
		if s.start == nil || ctx.Err() != nil {
			continue
		}
		a, err := s.start(ctx)
		if err != nil {
			skips[i] = "could not start: " + err.Error()
			fmt.Fprintf(e.log, "  %-22s %-15s %s\n", sc.name, s.name, skips[i])
			continue
		}
		arms[i], acc[i] = a, &accum{cpu: make(map[string]time.Duration)}
	}
	defer func() {
		for _, a := range arms {
			if a != nil {
				a.Close()
			}
		}
	}()
	j := sc.job(e, rate)
	j.Scenario = sc.name
	if sc.warm {
		for _, a := range arms {
			if a == nil || ctx.Err() != nil {
				continue
			}
			w := job{Scenario: sc.name + "_warmup", Mode: "closed", Method: "GET", URL: e.up.static + "/small",
				Concurrency: max(j.Concurrency, 1), DurationMS: 300, KeepAlive: j.KeepAlive, TimeoutMS: 10_000}
			wctx, cancel := context.WithTimeout(ctx, jobBound(w))
			_, _ = a.Run(wctx, w)
			cancel()
		}
	}
	for round := 1; round <= e.rounds; round++ {
		for i, a := range arms {
			if a == nil || ctx.Err() != nil {
				continue
			}
			measureRound(ctx, e, sc, a, j, acc[i], round)
			fmt.Fprintf(e.log, "  %-22s %-15s round %d/%d: %s\n", sc.name, slots[i].name, round, e.rounds, acc[i].progress())
		}
	}
	var out []*Result
	for i, s := range slots {
		r := &Result{Arm: s.name, Scenario: sc.name}
		if arms[i] == nil {
			r.Status, r.Note = statusSkipped, skips[i]
		} else {
			acc[i].fill(r, sc, j)
		}
		out = append(out, r)
	}
	return out
}

func (a *accum) progress() string {
	if a.elapsed == 0 {
		return "no figures: " + a.errSample
	}
	return fmt.Sprintf("%d requests, %d errors, %.0f req/s", a.requests, a.errors, float64(a.requests)/a.elapsed.Seconds())
}

// measureRound runs one round of j on a and adds its figures to acc.
func measureRound(ctx context.Context, e *env, sc scenario, a arm, j job, acc *accum, round int) {
	// The harness is the client of the Go arms: hand back what earlier
	// rounds left on its heap, so their RSS figures start from the same floor.
	debug.FreeOSMemory()
	counter, countsSpans := a.(spanCounter)
	var spans0 sinkStats
	var spanErr error
	if countsSpans {
		spans0, spanErr = counter.SinkStats(ctx)
	}
	procs := a.Procs()
	before := make([]time.Duration, len(procs))
	for i, p := range procs {
		before[i], _ = cpuTime(p.pid)
	}
	sockBefore, _ := established(e.up.dynPort)
	s := startSampler(ctx, procs[0].pid, a.Goroutines(), 100*time.Millisecond)

	stopProfile := startProfile(ctx, e, sc, a, round)
	rctx, cancel := context.WithTimeout(ctx, jobBound(j))
	r, err := a.Run(rctx, j)
	cancel()
	stopProfile()
	if sc.idle {
		select {
		case <-time.After(idleWait):
		case <-ctx.Done():
		}
	}
	got := s.finish(ctx)
	for i, p := range procs {
		if after, err := cpuTime(p.pid); err == nil {
			acc.cpu[p.role] += after - before[i]
		}
	}
	if sc.idle {
		if sockAfter, err := established(e.up.dynPort); err == nil {
			acc.idleSockets = max(acc.idleSockets, sockAfter-sockBefore)
		}
		if got.haveGor && got.haveBaseGor {
			acc.idleGorAdded, acc.haveIdleGor = max(acc.idleGorAdded, got.lastGor-got.baselineGor), true
		}
	}
	if j.FreshPool {
		a.Release(ctx)
	}
	if countsSpans {
		acc.countsSpans = true
		spans1, serr := counter.SinkStats(ctx)
		if spanErr == nil {
			spanErr = serr
		}
		if spanErr == nil && errors.Is(err, errSpansSettling) {
			spanErr = err
		}
		if spanErr == nil {
			acc.spans += spans1.Spans - spans0.Spans
			acc.serverSpans += spans1.Server - spans0.Server
		} else if acc.spanErr == nil {
			acc.spanErr = spanErr
		}
	}

	acc.rounds++
	if err != nil && acc.errSample == "" {
		acc.errSample = err.Error()
	}
	if r.ErrSample != "" && acc.errSample == "" {
		acc.errSample = r.ErrSample
	}
	acc.requests += r.Requests
	acc.errors += r.Errors
	acc.bytes += r.Bytes
	acc.elapsed += time.Duration(r.ElapsedNS)
	acc.lat = append(acc.lat, r.Latencies...)
	rss, gor := got.maxRSS, got.maxGor
	if sc.idle {
		rss, gor = got.lastRSS, got.lastGor
	}
	acc.rss = max(acc.rss, rss)
	if got.haveGor {
		acc.gor, acc.haveGor = max(acc.gor, gor), true
	}
	if sc.perRequestRSS && r.Requests > 0 {
		acc.rssPerReq = max(acc.rssPerReq, (got.maxRSS-got.baselineRSS)*1024/r.Requests)
	}
}

// fill turns the rounds into one record.
func (a *accum) fill(r *Result, sc scenario, j job) {
	r.Status = statusOK
	r.Rounds = a.rounds
	r.Requests, r.Errors = a.requests, a.errors
	r.Concurrency = max(j.Concurrency, j.Count)
	r.DurationS = round3(a.elapsed.Seconds())
	r.ErrorSample = a.errSample
	if a.requests == 0 || a.errors == a.requests {
		r.Status = statusError
	}
	if a.elapsed > 0 {
		r.ReqPerS = round3(float64(a.requests-a.errors) / a.elapsed.Seconds())
		r.MBPerS = math.Round(float64(a.bytes)/1e6/a.elapsed.Seconds()*1e6) / 1e6
	}
	r.P50us, r.P99us = a.lat.summary()
	if done := a.requests; done > 0 {
		r.CPUByProcess = make(map[string]float64)
		for role, d := range a.cpu {
			r.CPUByProcess[role] = round3(float64(d.Microseconds()) / float64(done))
		}
		r.CPUusPerReq = r.CPUByProcess[mainRole(r.Arm)]
	}
	r.RSSKiB = a.rss
	if a.haveGor {
		g := a.gor
		r.Goroutines = &g
	}
	if sc.perRequestRSS {
		v := round3(float64(a.rssPerReq) / 1024)
		r.RSSPerReqKiB = &v
	}
	if sc.idle {
		n := a.idleSockets
		r.IdleSockets = &n
		if a.haveIdleGor && n > 0 {
			v := round3(float64(a.idleGorAdded) / float64(n))
			r.GoroutinesPerIdleSocket = &v
		}
	}
	if j.Mode == "rate" {
		r.RatePerS = round3(j.Rate)
	}
	if a.countsSpans {
		n := a.spans
		r.SpansExported = &n
		if a.requests > 0 {
			v := round3(float64(n) / float64(a.requests))
			r.SpansPerReq = &v
		}
		// A traced arm that exported nothing measured an exporter that
		// was not there, and one that exported fewer SERVER spans than it
		// made calls dropped some (the SDK's queue overflowed, or an
		// export failed): either way its CPU would pass for tracing that
		// costs less than it does. Counts that could not be read, or a
		// round whose spans were still arriving, make every figure of it
		// doubtful.
		switch {
		case r.Status != statusOK:
		case a.spanErr != nil:
			r.Status = statusError
			r.Note = "span counts unreliable: " + a.spanErr.Error()
		case n <= 0:
			r.Status = statusError
			r.Note = "no spans from the gateway reached the otlp sink (its log: -keep-logs)"
		case a.serverSpans < a.requests:
			r.Status = statusError
			r.Note = fmt.Sprintf("the gateway exported %d SERVER spans for %d calls: spans were dropped", a.serverSpans, a.requests)
		}
	}
}

// mainRole is the process whose CPU is an arm's cpu_us_per_req: the
// gateway's or the proxy's own, or the client's where nothing sits between.
func mainRole(arm string) string {
	switch arm {
	case "gateway_fetch", "gateway_fetch_traced", "gateway_stream":
		return "gateway"
	case "squid":
		return "squid"
	}
	return "client"
}

func round3(v float64) float64 {
	if math.IsNaN(v) || math.IsInf(v, 0) {
		return 0
	}
	return math.Round(v*1000) / 1000
}

// fixedRate is half the slowest arm's maximum: the lowest small_get_c32
// throughput among the arms that ran it cleanly, halved. The traced
// gateway is left out: the rate is the comparison of the ways to make a
// request, which tracing on or off must not move.
func fixedRate(c32 []*Result) float64 {
	slowest := math.Inf(1)
	for _, r := range c32 {
		if r.Status == statusOK && r.Errors == 0 && r.ReqPerS > 0 && r.Arm != "gateway_fetch_traced" {
			slowest = min(slowest, r.ReqPerS)
		}
	}
	if math.IsInf(slowest, 1) {
		return 0
	}
	return math.Floor(slowest / 2)
}

// addLatencyVsDirect sets added_p50_us/added_p99_us: each arm's latency
// minus direct's at the same fixed rate.
func addLatencyVsDirect(rs []*Result) {
	var direct *Result
	for _, r := range rs {
		if r.Arm == "direct" && r.Status == statusOK {
			direct = r
		}
	}
	if direct == nil {
		return
	}
	for _, r := range rs {
		if r.Status != statusOK {
			continue
		}
		p50, p99 := round3(r.P50us-direct.P50us), round3(r.P99us-direct.P99us)
		r.AddedP50us, r.AddedP99us = &p50, &p99
	}
}

// addTracingOverhead sets tracing_overhead_pct on gateway_fetch_traced's
// record: how much more gateway CPU per request it took than
// gateway_fetch's in the same scenario (the same rounds, interleaved), in
// percent. Nothing is set unless both ran cleanly (no failed call: a
// failure costs less CPU than a request).
func addTracingOverhead(rs []*Result) {
	var plain, traced *Result
	for _, r := range rs {
		switch {
		case r.Status != statusOK || r.Errors > 0 || r.CPUusPerReq <= 0:
		case r.Arm == "gateway_fetch":
			plain = r
		case r.Arm == "gateway_fetch_traced":
			traced = r
		}
	}
	if plain == nil || traced == nil {
		return
	}
	v := round3(100 * (traced.CPUusPerReq/plain.CPUusPerReq - 1))
	traced.TracingOverheadPct = &v
}
