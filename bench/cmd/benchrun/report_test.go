package main

import (
	"bytes"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"
)

// TestResultsShape checks results.json's contract: a list of objects with
// the keys the issue names, goroutines null where not measured.
func TestResultsShape(t *testing.T) {
	g := 12
	acc := &accum{rounds: 2, requests: 1000, errors: 0, bytes: 13000, elapsed: 2 * time.Second,
		lat: latencies{300, 100, 200}, cpu: map[string]time.Duration{"gateway": 50 * time.Millisecond, "client": 20 * time.Millisecond},
		rss: 40960, gor: g, haveGor: true}
	ok := &Result{Arm: "gateway_fetch", Scenario: "small_get_c32"}
	acc.fill(ok, scenarioNamed("small_get_c32"), job{Mode: "closed", Concurrency: 32})
	skipped := &Result{Arm: "squid", Scenario: "small_get_c32", Status: statusSkipped, Note: "squid not installed"}

	got := writeAndRead(t, ok, skipped)
	if len(got) != 2 {
		t.Fatalf("got %d records, want 2", len(got))
	}
	for _, rec := range got {
		for _, k := range []string{"arm", "scenario", "req_per_s", "mb_per_s", "p50_us", "p99_us", "cpu_us_per_req", "rss_kib", "goroutines", "errors"} {
			if _, ok := rec[k]; !ok {
				t.Errorf("%s/%s: key %q missing", rec["arm"], rec["scenario"], k)
			}
		}
	}
	r := got[0]
	checks := map[string]any{"req_per_s": 500.0, "mb_per_s": 0.0065, "p50_us": 200.0, "p99_us": 300.0,
		"cpu_us_per_req": 50.0, "rss_kib": 40960.0, "goroutines": 12.0, "errors": 0.0, "status": "ok"}
	for k, want := range checks {
		if r[k] != want {
			t.Errorf("%s = %v, want %v", k, r[k], want)
		}
	}
	if got[1]["goroutines"] != nil || got[1]["status"] != "skipped" {
		t.Errorf("skipped record = %v", got[1])
	}
}

func TestFixedRateIsHalfTheSlowest(t *testing.T) {
	rs := []*Result{
		{Arm: "direct", Status: statusOK, ReqPerS: 30000},
		{Arm: "squid", Status: statusOK, ReqPerS: 12001},
		{Arm: "undici", Status: statusOK, ReqPerS: 100, Errors: 3}, // not clean: ignored
		{Arm: "node_http", Status: statusSkipped},
		{Arm: "gateway_fetch_traced", Status: statusOK, ReqPerS: 5000}, // tracing must not move the rate
	}
	if got := fixedRate(rs); got != 6000 {
		t.Fatalf("fixedRate = %v, want 6000", got)
	}
	if got := fixedRate(nil); got != 0 {
		t.Fatalf("fixedRate(nil) = %v, want 0", got)
	}
}

func TestAddedLatencyVsDirect(t *testing.T) {
	rs := []*Result{
		{Arm: "direct", Status: statusOK, P50us: 100, P99us: 400},
		{Arm: "gateway_fetch", Status: statusOK, P50us: 250, P99us: 900},
	}
	addLatencyVsDirect(rs)
	if *rs[1].AddedP50us != 150 || *rs[1].AddedP99us != 500 || *rs[0].AddedP50us != 0 {
		t.Fatalf("added = %v %v", *rs[1].AddedP50us, *rs[1].AddedP99us)
	}
}

func TestPrintTable(t *testing.T) {
	var buf bytes.Buffer
	printTable(&buf, []*Result{
		{Arm: "direct", Scenario: "small_get_c1", Status: statusOK, ReqPerS: 1234.6, P50us: 800},
		{Arm: "squid", Scenario: "small_get_c1", Status: statusSkipped, Note: "squid not installed"},
	})
	out := buf.String()
	for _, want := range []string{"| scenario", "direct", "1235", "0.800", "skipped: squid not installed"} {
		if !strings.Contains(out, want) {
			t.Errorf("table lacks %q:\n%s", want, out)
		}
	}
}

func TestPatternReader(t *testing.T) {
	r := &patternReader{left: 100_000}
	var total int
	buf := make([]byte, 7000)
	for {
		n, err := r.Read(buf)
		total += n
		if err != nil {
			break
		}
	}
	if total != 100_000 {
		t.Fatalf("read %d bytes, want 100000", total)
	}
}

func TestUndiciSpec(t *testing.T) {
	for v, want := range map[string]string{"20.20.2": "undici@7", "20.18.0": "undici@6", "22.1.0": "undici@7", "18.19.0": "undici@6"} {
		if got := undiciSpec(v); got != want {
			t.Errorf("undiciSpec(%s) = %s, want %s", v, got, want)
		}
	}
}

func TestTracingOverhead(t *testing.T) {
	tests := []struct {
		name string
		rs   []*Result
		want *float64 // on gateway_fetch_traced's record; nil: not set
	}{
		{
			name: "both ran",
			rs: []*Result{
				{Arm: "gateway_fetch", Status: statusOK, CPUusPerReq: 80},
				{Arm: "gateway_fetch_traced", Status: statusOK, CPUusPerReq: 100},
				{Arm: "squid", Status: statusOK, CPUusPerReq: 50},
			},
			want: new(25.0),
		},
		{
			name: "cheaper (noise)",
			rs: []*Result{
				{Arm: "gateway_fetch_traced", Status: statusOK, CPUusPerReq: 79},
				{Arm: "gateway_fetch", Status: statusOK, CPUusPerReq: 80},
			},
			want: new(-1.25),
		},
		{
			name: "no gateway_fetch",
			rs:   []*Result{{Arm: "gateway_fetch_traced", Status: statusOK, CPUusPerReq: 100}},
		},
		{
			name: "gateway_fetch failed",
			rs: []*Result{
				{Arm: "gateway_fetch", Status: statusError},
				{Arm: "gateway_fetch_traced", Status: statusOK, CPUusPerReq: 100},
			},
		},
		{
			name: "a failed call in gateway_fetch",
			rs: []*Result{
				{Arm: "gateway_fetch", Status: statusOK, CPUusPerReq: 80, Errors: 1},
				{Arm: "gateway_fetch_traced", Status: statusOK, CPUusPerReq: 100},
			},
		},
		{
			name: "a failed call in the traced arm",
			rs: []*Result{
				{Arm: "gateway_fetch", Status: statusOK, CPUusPerReq: 80},
				{Arm: "gateway_fetch_traced", Status: statusOK, CPUusPerReq: 100, Errors: 2},
			},
		},
		{
			name: "traced failed",
			rs: []*Result{
				{Arm: "gateway_fetch", Status: statusOK, CPUusPerReq: 80},
				{Arm: "gateway_fetch_traced", Status: statusError, CPUusPerReq: 100},
			},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			addTracingOverhead(tt.rs)
			for _, r := range tt.rs {
				got := r.TracingOverheadPct
				switch {
				case r.Arm != "gateway_fetch_traced":
					if got != nil {
						t.Errorf("%s has tracing_overhead_pct %v", r.Arm, *got)
					}
				case tt.want == nil && got != nil:
					t.Errorf("tracing_overhead_pct = %v, want none", *got)
				case tt.want != nil && (got == nil || *got != *tt.want):
					t.Errorf("tracing_overhead_pct = %v, want %v", fmtPtr(got), *tt.want)
				}
			}
		})
	}
}

// TestTracedRecord checks the traced arm's record: its spans, in
// results.json and the table, and the failure when none were exported.
func TestTracedRecord(t *testing.T) {
	sc, j := scenarioNamed("small_get_c32"), job{Mode: "closed", Concurrency: 32}
	acc := func(spans int64) *accum {
		return &accum{rounds: 2, requests: 1000, elapsed: 2 * time.Second, lat: latencies{100},
			cpu:         map[string]time.Duration{"gateway": 100 * time.Millisecond, "otlpsink": 10 * time.Millisecond},
			countsSpans: true, spans: spans, serverSpans: spans / 2}
	}

	traced := &Result{Arm: "gateway_fetch_traced", Scenario: sc.name}
	acc(2003).fill(traced, sc, j)
	plain := &Result{Arm: "gateway_fetch", Scenario: sc.name}
	plainAcc := acc(0)
	plainAcc.countsSpans = false
	plainAcc.cpu = map[string]time.Duration{"gateway": 80 * time.Millisecond}
	plainAcc.fill(plain, sc, j)
	addTracingOverhead([]*Result{plain, traced})

	if traced.Status != statusOK || traced.CPUusPerReq != 100 {
		t.Fatalf("traced record: status %s, cpu %v; want ok, 100 (the gateway's)", traced.Status, traced.CPUusPerReq)
	}
	got := writeAndRead(t, plain, traced)
	for k, want := range map[string]any{"spans_exported": 2003.0, "spans_per_req": 2.003, "tracing_overhead_pct": 25.0} {
		if got[1][k] != want {
			t.Errorf("traced %s = %v, want %v", k, got[1][k], want)
		}
		if v, ok := got[0][k]; ok {
			t.Errorf("gateway_fetch has %s = %v", k, v)
		}
	}

	var buf bytes.Buffer
	printTable(&buf, []*Result{plain, traced})
	if out := buf.String(); !strings.Contains(out, "tracing +25.0% CPU, 2.00 spans/req") {
		t.Errorf("table lacks the traced arm's note:\n%s", out)
	}

	none := &Result{Arm: "gateway_fetch_traced", Scenario: sc.name}
	acc(0).fill(none, sc, j)
	if none.Status != statusError || !strings.Contains(none.Note, "no spans") {
		t.Fatalf("no spans exported: status %s, note %q; want an error saying so", none.Status, none.Note)
	}
	buf.Reset()
	printTable(&buf, []*Result{none})
	if out := buf.String(); !strings.Contains(out, "FAILED: no spans from the gateway reached the otlp sink") {
		t.Errorf("table lacks the failure:\n%s", out)
	}

	// A round whose spans did not settle: the counts are not trusted.
	unsettled := &Result{Arm: "gateway_fetch_traced", Scenario: sc.name}
	u := acc(2003)
	u.spanErr = fmt.Errorf("%w: spans still arriving after 10s", errSpansSettling)
	u.fill(unsettled, sc, j)
	if unsettled.Status != statusError || !strings.Contains(unsettled.Note, "span counts unreliable: waiting for the round's spans") {
		t.Fatalf("unsettled spans: status %s, note %q; want an error saying so", unsettled.Status, unsettled.Note)
	}

	// Fewer SERVER spans than calls: spans were dropped.
	dropped := &Result{Arm: "gateway_fetch_traced", Scenario: sc.name}
	a := acc(2003)
	a.serverSpans = 999
	a.fill(dropped, sc, j)
	if dropped.Status != statusError || !strings.Contains(dropped.Note, "999 SERVER spans for 1000 calls") {
		t.Fatalf("dropped spans: status %s, note %q; want an error saying so", dropped.Status, dropped.Note)
	}
}

func TestSlotsIn(t *testing.T) {
	slots := []armSlot{
		{name: "gateway_fetch"},
		{name: "gateway_fetch_traced", scenarios: defaultScenarios["gateway_fetch_traced"]},
		{name: "squid", skip: "not installed"},
	}
	names := func(ss []armSlot) string {
		var out []string
		for _, s := range ss {
			out = append(out, s.name)
		}
		return strings.Join(out, ",")
	}
	for sc, want := range map[string]string{
		"small_get_c1":         "gateway_fetch,gateway_fetch_traced,squid",
		"small_get_c32":        "gateway_fetch,gateway_fetch_traced,squid",
		"small_get_fixed_rate": "gateway_fetch,gateway_fetch_traced,squid",
		"download_100m_c4":     "gateway_fetch,squid",
	} {
		if got := names(slotsIn(slots, sc)); got != want {
			t.Errorf("slotsIn(%s) = %s, want %s", sc, got, want)
		}
	}
}

func fmtPtr(p *float64) string {
	if p == nil {
		return "none"
	}
	return strconv.FormatFloat(*p, 'g', -1, 64)
}

// writeAndRead writes rs as results.json and reads it back as JSON
// objects.
func writeAndRead(t *testing.T, rs ...*Result) []map[string]any {
	t.Helper()
	path := filepath.Join(t.TempDir(), "results.json")
	if err := writeResults(path, rs); err != nil {
		t.Fatal(err)
	}
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var got []map[string]any
	if err := json.Unmarshal(b, &got); err != nil {
		t.Fatalf("results.json is not a list of objects: %v", err)
	}
	return got
}
