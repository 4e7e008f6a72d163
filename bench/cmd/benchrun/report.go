package main

import (
	"encoding/json"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"text/tabwriter"
)

const (
	statusOK      = "ok"
	statusError   = "error"   // the arm ran and every request failed
	statusSkipped = "skipped" // the arm is not available here
)

// Result is one (arm, scenario) record of results.json. The keys named in
// the issue (arm, scenario, req_per_s, mb_per_s, p50_us, p99_us,
// cpu_us_per_req, rss_kib, goroutines, errors) are always present.
type Result struct {
	Arm      string `json:"arm"`
	Scenario string `json:"scenario"`
	Status   string `json:"status"`
	Note     string `json:"note,omitempty"`

	ReqPerS float64 `json:"req_per_s"` // successful requests per second of round time
	MBPerS  float64 `json:"mb_per_s"`  // body bytes (10^6) per second, down or up
	P50us   float64 `json:"p50_us"`
	P99us   float64 `json:"p99_us"`
	// AddedP50us/AddedP99us: latency minus direct's (small_get_fixed_rate).
	AddedP50us *float64 `json:"added_p50_us,omitempty"`
	AddedP99us *float64 `json:"added_p99_us,omitempty"`
	RatePerS   float64  `json:"rate_per_s,omitempty"` // the fixed rate offered

	// CPUusPerReq is the CPU time of the arm's own process (the gateway's,
	// squid's, or the client's for direct and the Node arms) per request;
	// CPUByProcess has every measured process (client, gateway, squid,
	// upstream, nginx).
	CPUusPerReq  float64            `json:"cpu_us_per_req"`
	CPUByProcess map[string]float64 `json:"cpu_us_per_req_by_process,omitempty"`
	// RSSKiB is the largest RSS of that process sampled during the rounds
	// (idle_1k: once idle).
	RSSKiB       int64    `json:"rss_kib"`
	RSSPerReqKiB *float64 `json:"rss_per_req_kib,omitempty"` // slow_5k: (peak - before) / requests
	// Goroutines of the gateway (from pprof), or of the harness for the Go
	// client arms; null for squid and the Node arms.
	Goroutines  *int `json:"goroutines"`
	IdleSockets *int `json:"idle_sockets,omitempty"` // idle_1k: pooled connections to the upstream
	// GoroutinesPerIdleSocket (idle_1k, Go arms) is the goroutines the
	// arm's process gained while opening the idle sockets, per socket:
	// what the pool costs per socket, without the process's fixed ones
	// (gRPC's stream workers, the runtime's).
	GoroutinesPerIdleSocket *float64 `json:"goroutines_per_idle_socket,omitempty"`

	// SpansExported (gateway_fetch_traced) is the total number of spans
	// the OTLP sink received from the arm's gateway during the measured
	// rounds (warm-up excluded); SpansPerReq is that per request (2 for a
	// small Fetch: the SERVER span and one CLIENT span).
	SpansExported *int64   `json:"spans_exported,omitempty"`
	SpansPerReq   *float64 `json:"spans_per_req,omitempty"`
	// TracingOverheadPct (gateway_fetch_traced) is 100 * (its
	// cpu_us_per_req / gateway_fetch's - 1) in the same scenario; absent
	// when gateway_fetch did not run there.
	TracingOverheadPct *float64 `json:"tracing_overhead_pct,omitempty"`

	Errors      int64   `json:"errors"`
	Requests    int64   `json:"requests"`
	Concurrency int     `json:"concurrency,omitempty"`
	Rounds      int     `json:"rounds,omitempty"`
	DurationS   float64 `json:"duration_s,omitempty"` // measured time, all rounds
	ErrorSample string  `json:"error_sample,omitempty"`
}

// writeResults writes the records as a JSON list, atomically.
func writeResults(path string, rs []*Result) error {
	if rs == nil {
		rs = []*Result{}
	}
	b, err := json.MarshalIndent(rs, "", "  ")
	if err != nil {
		return err
	}
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return err
	}
	tmp := path + ".tmp"
	if err := os.WriteFile(tmp, append(b, '\n'), 0o644); err != nil {
		return err
	}
	return os.Rename(tmp, path)
}

// printTable writes the records as an aligned, markdown-compatible table.
func printTable(w io.Writer, rs []*Result) {
	tw := tabwriter.NewWriter(w, 0, 0, 1, ' ', tabwriter.Debug)
	cols := []string{"scenario", "arm", "req/s", "MB/s", "p50 ms", "p99 ms", "+p50 ms", "cpu µs/req", "client µs/req", "upstream µs/req", "RSS MiB", "goroutines", "errors", "note"}
	row := func(cells ...string) {
		fmt.Fprintln(tw, "| "+strings.Join(cells, "\t ")+"\t")
	}
	row(cols...)
	seps := make([]string, len(cols))
	for i := range seps {
		seps[i] = "---"
	}
	row(seps...)
	for _, r := range rs {
		if r.Status == statusSkipped {
			row(r.Scenario, r.Arm, "", "", "", "", "", "", "", "", "", "", "", "skipped: "+r.Note)
			continue
		}
		note := r.Note
		switch {
		case r.Status == statusError:
			note = "FAILED: " + strings.Join(nonEmpty(r.Note, r.ErrorSample), ": ")
		case r.Errors > 0:
			note = "e.g. " + r.ErrorSample
		case r.IdleSockets != nil:
			note = fmt.Sprintf("%d idle sockets", *r.IdleSockets)
			if r.GoroutinesPerIdleSocket != nil {
				note += fmt.Sprintf(", %.3f goroutines/socket", *r.GoroutinesPerIdleSocket)
			}
		case r.RSSPerReqKiB != nil:
			note = fmt.Sprintf("%.1f KiB RSS/request", *r.RSSPerReqKiB)
		case r.RatePerS > 0:
			note = fmt.Sprintf("at %.0f req/s", r.RatePerS)
		}
		if r.Status == statusOK {
			note = strings.Join(nonEmpty(note, tracingNote(r)), "; ")
		}
		added := ""
		if r.AddedP50us != nil {
			added = fmt.Sprintf("%+.3f", *r.AddedP50us/1000)
		}
		gor := ""
		if r.Goroutines != nil {
			gor = fmt.Sprint(*r.Goroutines)
		}
		client := ""
		if mainRole(r.Arm) != "client" {
			client = num(r.CPUByProcess["client"])
		}
		row(r.Scenario, r.Arm,
			num(r.ReqPerS), num(r.MBPerS),
			fmt.Sprintf("%.3f", r.P50us/1000), fmt.Sprintf("%.3f", r.P99us/1000), added,
			num(r.CPUusPerReq), client, num(r.CPUByProcess["upstream"]+r.CPUByProcess["nginx"]),
			fmt.Sprintf("%.1f", float64(r.RSSKiB)/1024), gor, fmt.Sprint(r.Errors), truncate(note, 60))
	}
	tw.Flush()
}

// tracingNote is the traced arm's part of the note: the overhead versus
// gateway_fetch and the spans per request; "" for other arms.
func tracingNote(r *Result) string {
	var parts []string
	if r.TracingOverheadPct != nil {
		parts = append(parts, fmt.Sprintf("tracing %+.1f%% CPU", *r.TracingOverheadPct))
	}
	if r.SpansPerReq != nil {
		parts = append(parts, fmt.Sprintf("%.2f spans/req", *r.SpansPerReq))
	}
	return strings.Join(parts, ", ")
}

func nonEmpty(ss ...string) []string {
	var out []string
	for _, s := range ss {
		if s != "" {
			out = append(out, s)
		}
	}
	return out
}

// num prints a figure with about three significant digits.
func num(v float64) string {
	switch {
	case v == 0:
		return "0"
	case v >= 100:
		return fmt.Sprintf("%.0f", v)
	case v >= 10:
		return fmt.Sprintf("%.1f", v)
	}
	return fmt.Sprintf("%.2f", v)
}

func truncate(s string, n int) string {
	s = strings.ReplaceAll(s, "\n", " ")
	s = strings.ReplaceAll(s, "|", "/")
	if len(s) > n {
		return s[:n-1] + "…"
	}
	return s
}

// lastLines returns the last n lines of s, joined by " / ".
func lastLines(s string, n int) string {
	lines := strings.Split(strings.TrimSpace(s), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, " / ")
}
