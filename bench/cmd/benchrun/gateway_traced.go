package main

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"time"
)

// gateway_fetch_traced is gateway_fetch from a traced caller (each call
// with callerTraceparent) to a gateway exporting its spans: the same flags,
// client and calls, the gateway started with OTLP trace export to the
// harness's sink (otlpsink.go). Side by side with gateway_fetch in the same rounds, the
// difference in gateway CPU per request is what tracing costs a deployment
// that exports (tracing_overhead_pct). Metrics are as in every gateway arm
// (Prometheus, from --admin-listen): only traces differ.

// exportBatchDelay is OTEL_BSP_SCHEDULE_DELAY for the traced gateway: how
// long the SDK's batch processor waits before exporting a batch that is
// not full. Under load the batches fill (512 spans, about a tenth of a
// second at c=1) and go out long before it, as with the default (5 s), so
// the steady-state cost is the default's; only the tail of a round goes
// out sooner, within the round's settle (tracedGatewayArm.Run) instead of
// during the next arm's round, where nobody would count its CPU.
const exportBatchDelay = 500 * time.Millisecond

// Settling after a round: the sink's count must stay unchanged for
// settleQuiet (longer than exportBatchDelay, so the timer of a partial
// batch has fired and its export arrived), polled every settlePoll, for
// at most settleMax.
const (
	settleQuiet = exportBatchDelay + 250*time.Millisecond
	settlePoll  = 25 * time.Millisecond
	settleMax   = 10 * time.Second
)

// tracedEnv is the traced gateway's environment: traces only, OTLP over
// protocol ("http/protobuf", the exporters' default, or "grpc") without
// TLS to endpoint (sink.endpoint). The variables are the
// per-signal OTEL_EXPORTER_OTLP_TRACES_* ones so that metrics stay off
// OTLP (internal/telemetry.Setup enables a signal only when a variable for
// it is set). The sampler is named although it is the SDK's default:
// parent-based, always on, so the callers' sampled traceparent decides.
func tracedEnv(protocol, endpoint string) []string {
	return gatewayEnv(
		"OTEL_TRACES_EXPORTER=otlp",
		"OTEL_EXPORTER_OTLP_TRACES_PROTOCOL="+protocol,
		"OTEL_EXPORTER_OTLP_TRACES_ENDPOINT="+endpoint,
		"OTEL_EXPORTER_OTLP_TRACES_INSECURE=true",
		"OTEL_TRACES_SAMPLER=parentbased_always_on",
		"OTEL_BSP_SCHEDULE_DELAY="+strconv.FormatInt(exportBatchDelay.Milliseconds(), 10),
	)
}

// spanCounter is an arm whose gateway exports spans: measureRound reads
// the count before and after each round, and fill fails the arm when the
// rounds exported none.
type spanCounter interface {
	// SinkStats are the sink's counts so far (every span, SERVER spans).
	SinkStats(ctx context.Context) (sinkStats, error)
}

// tracedGatewayArm is gateway_fetch_traced: a gatewayArm whose gateway
// exports to sink.
type tracedGatewayArm struct {
	*gatewayArm
	sink *otlpSink
}

// Run runs the round as gateway_fetch does, then waits for the gateway to
// export the round's last spans, so that their export is part of the
// round's CPU and of its span count. The round's time (req_per_s) ends
// with the load; only the CPU and memory readings wait.
func (a *tracedGatewayArm) Run(ctx context.Context, j job) (roundResult, error) {
	r, err := a.gatewayArm.Run(ctx, j)
	// The goroutine sampler keeps running through the settle (an idle
	// gateway, one goroutine count per 500 ms): noise next to a round's
	// thousands of requests, and the price of charging the export of the
	// round's last spans to the round.
	if _, serr := settleSpans(ctx, a.spansExported, settleQuiet, settlePoll, settleMax); serr != nil && err == nil {
		err = fmt.Errorf("%w: %w", errSpansSettling, serr)
	}
	return r, err
}

// errSpansSettling marks a round whose spans did not settle: its span
// count, and so the arm's record, cannot be trusted (measureRound).
var errSpansSettling = errors.New("waiting for the round's spans")

// SinkStats asks the sink for its counts.
func (a *tracedGatewayArm) SinkStats(ctx context.Context) (sinkStats, error) {
	return a.sink.stats(ctx)
}

// spansExported is the sink's count of every span.
func (a *tracedGatewayArm) spansExported(ctx context.Context) (int64, error) {
	st, err := a.sink.stats(ctx)
	return st.Spans, err
}

// settleSpans polls count every poll until it has returned the same value
// for quiet, and returns that value; it gives up after limit, or when ctx
// is done or count fails, returning the last value read and why.
func settleSpans(ctx context.Context, count func(context.Context) (int64, error), quiet, poll, limit time.Duration) (int64, error) {
	deadline := time.Now().Add(limit)
	last, err := count(ctx)
	if err != nil {
		return 0, err
	}
	since := time.Now()
	t := time.NewTicker(poll)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return last, ctx.Err()
		case <-t.C:
		}
		n, err := count(ctx)
		if err != nil {
			return last, err
		}
		now := time.Now()
		if n != last {
			last, since = n, now
		}
		switch {
		case now.Sub(since) >= quiet:
			return last, nil
		case now.After(deadline):
			return last, fmt.Errorf("spans still arriving after %s", limit)
		}
	}
}
