// Command benchrun is httpgateway's benchmark harness (issue 9). It starts
// its own upstream (nginx when installed, else a Go server), the gateway
// and squid as separate processes, the Node clients when node is present,
// an OTLP trace sink for the gateway that exports (gateway_fetch_traced),
// and runs each scenario against each arm in interleaved rounds on
// loopback, measuring every process from /proc. It prints a table and
// writes results.json: one record per (arm, scenario).
//
//	go run ./bench/cmd/benchrun -quick        # bench-quick: under 2 minutes
//	go run ./bench/cmd/benchrun                # the full run
//
// bench/run.sh installs nginx and squid first; `make bench` and
// `make bench-quick` call it. The harness exits 0 when it ran, whatever
// arms failed (their records say so); non-zero only when it broke.
package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"net/url"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"sync"
	"syscall"
	"time"
)

// armNames in the order each round runs them.
var armNames = []string{"direct", "gateway_fetch", "gateway_fetch_traced", "gateway_stream", "squid", "node_http", "undici"}

func main() {
	if len(os.Args) > 1 {
		switch os.Args[1] {
		case "upstream":
			os.Exit(runUpstream(os.Args[2:]))
		case "otlpsink":
			os.Exit(runOTLPSink(os.Args[2:]))
		}
	}
	os.Exit(run())
}

type options struct {
	quick        bool
	out          string
	arms         []string
	armsGiven    bool // -arms named the arms: each runs in every scenario
	scenarios    []string
	duration     time.Duration
	rounds       int
	repo         string
	keepLogs     bool
	gwLog        string
	otlpProtocol string // gateway_fetch_traced's OTLP protocol
	profile      string
}

func parseFlags() (*options, error) {
	o := &options{}
	fs := flag.NewFlagSet("benchrun", flag.ContinueOnError)
	fs.BoolVar(&o.quick, "quick", false, "bench-quick: the quick scenarios, short rounds")
	fs.StringVar(&o.out, "out", "bench/results.json", "write the results `file` (a JSON list)")
	arms := fs.String("arms", "", "comma-separated `arms` to run (default all: "+strings.Join(armNames, ",")+
		"; gateway_fetch_traced then only in "+strings.Join(defaultScenarios["gateway_fetch_traced"], ",")+")")
	scs := fs.String("scenarios", "", "comma-separated `scenarios` to run (default: all, or the quick ones with -quick)")
	fs.DurationVar(&o.duration, "duration", 0, "length of one round (default 3s, 2s with -quick)")
	fs.IntVar(&o.rounds, "rounds", 0, "interleaved rounds per scenario (default 3, 2 with -quick)")
	fs.StringVar(&o.repo, "repo", ".", "the httpgateway module `root` (./cmd/gateway, bench/node)")
	fs.BoolVar(&o.keepLogs, "keep-logs", false, "keep the temporary folder with the processes' logs")
	fs.StringVar(&o.otlpProtocol, "otlp-protocol", "http/protobuf", "gateway_fetch_traced's OTLP `protocol`: http/protobuf (the default of the exporters) or grpc")
	fs.StringVar(&o.gwLog, "gateway-log-level", "warn", "the gateway's --log-level (info logs every call)")
	fs.StringVar(&o.profile, "profile", "", "write a CPU profile of the gateway for each gateway round into `dir` (<scenario>_<arm>_<round>.pprof)")
	if err := fs.Parse(os.Args[1:]); err != nil {
		return nil, err
	}
	if o.duration == 0 {
		o.duration = 3 * time.Second
		if o.quick {
			o.duration = 2 * time.Second
		}
	}
	if o.otlpProtocol != "http/protobuf" && o.otlpProtocol != "grpc" {
		return nil, fmt.Errorf("-otlp-protocol %q: want http/protobuf or grpc", o.otlpProtocol)
	}
	if o.rounds == 0 {
		o.rounds = 3
		if o.quick {
			o.rounds = 2
		}
	}
	split := func(s string) []string {
		var out []string
		for f := range strings.SplitSeq(s, ",") {
			if f = strings.TrimSpace(f); f != "" {
				out = append(out, f)
			}
		}
		return out
	}
	o.arms, o.scenarios = split(*arms), split(*scs)
	o.armsGiven = len(o.arms) > 0
	if !o.armsGiven {
		o.arms = armNames
	}
	for _, a := range o.arms {
		if !slices.Contains(armNames, a) {
			return nil, fmt.Errorf("unknown arm %q (arms: %s)", a, strings.Join(armNames, ","))
		}
	}
	for _, s := range o.scenarios {
		if !slices.ContainsFunc(scenarios, func(sc scenario) bool { return sc.name == s }) {
			return nil, fmt.Errorf("unknown scenario %q", s)
		}
	}
	return o, nil
}

func run() int {
	o, err := parseFlags()
	if err != nil {
		fmt.Fprintln(os.Stderr, "benchrun:", err)
		return 2
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	// Every child is stopped on the way out, Ctrl-C included: the signal
	// cancels ctx, the scenario loops return, and this runs.
	defer kids.stopAll()

	raiseFileLimit()
	tmp, err := os.MkdirTemp("", "httpgateway-bench-")
	if err != nil {
		fmt.Fprintln(os.Stderr, "benchrun:", err)
		return 1
	}
	// Squid drops root for its own user, which must reach its folder inside.
	if err := os.Chmod(tmp, 0o711); err != nil {
		fmt.Fprintln(os.Stderr, "benchrun:", err)
		return 1
	}
	if o.keepLogs {
		fmt.Fprintln(os.Stderr, "logs kept in", tmp)
	} else {
		defer os.RemoveAll(tmp)
	}
	logf, err := os.Create(filepath.Join(tmp, "processes.log"))
	if err != nil {
		fmt.Fprintln(os.Stderr, "benchrun:", err)
		return 1
	}
	defer logf.Close()
	// Children's output goes to the log only; progress goes to stderr.
	progress := os.Stderr

	started := time.Now()
	slots, up, notes, err := setUp(ctx, o, tmp, logf, progress)
	if err != nil {
		fmt.Fprintln(os.Stderr, "benchrun: set-up failed:", err)
		return 1
	}
	e := &env{up: up, duration: o.duration, rounds: o.rounds, log: progress, profileDir: o.profile}

	var results []*Result
	var c32 []*Result
	for _, sc := range selected(o) {
		if ctx.Err() != nil {
			break
		}
		rate := 0.0
		if sc.name == "small_get_fixed_rate" {
			if c32 == nil { // not run: measure each arm's maximum briefly
				fmt.Fprintln(progress, "calibrating the fixed rate (small_get_c32, 1 round)")
				ce := *e
				ce.rounds, ce.duration = 1, min(e.duration, 2*time.Second)
				c32 = runScenario(ctx, &ce, scenarioNamed("small_get_c32"), slotsIn(slots, "small_get_c32"), 0)
			}
			if rate = fixedRate(c32); rate <= 0 {
				fmt.Fprintln(progress, "no arm measured small_get_c32 cleanly: small_get_fixed_rate skipped")
				continue
			}
		}
		fmt.Fprintf(progress, "scenario %s (%d rounds of %s)\n", sc.name, e.rounds, e.duration)
		rs := runScenario(ctx, e, sc, slotsIn(slots, sc.name), rate)
		if sc.name == "small_get_c32" {
			c32 = rs
		}
		if sc.name == "small_get_fixed_rate" {
			addLatencyVsDirect(rs)
		}
		addTracingOverhead(rs)
		results = append(results, rs...)
	}
	if ctx.Err() != nil {
		fmt.Fprintln(os.Stderr, "benchrun: interrupted; writing what was measured")
	}

	fmt.Println()
	fmt.Println(machineLine(up, o))
	for _, n := range notes {
		fmt.Println("note:", n)
	}
	fmt.Println()
	printTable(os.Stdout, results)
	fmt.Printf("\n%d records in %s; took %s\n", len(results), o.out, time.Since(started).Round(time.Second))
	if err := writeResults(o.out, results); err != nil {
		fmt.Fprintln(os.Stderr, "benchrun: writing results:", err)
		return 1
	}
	return 0
}

func scenarioNamed(name string) scenario {
	i := slices.IndexFunc(scenarios, func(sc scenario) bool { return sc.name == name })
	return scenarios[i]
}

// selected returns the scenarios to run, in their fixed order.
func selected(o *options) []scenario {
	var out []scenario
	for _, sc := range scenarios {
		switch {
		case len(o.scenarios) > 0:
			if slices.Contains(o.scenarios, sc.name) {
				out = append(out, sc)
			}
		case o.quick:
			if sc.quick {
				out = append(out, sc)
			}
		default:
			out = append(out, sc)
		}
	}
	return out
}

// raiseFileLimit raises RLIMIT_NOFILE to its hard limit. Setting it
// explicitly (rather than relying on the Go runtime's own raise) makes
// children inherit it: slow_5k needs two descriptors per request in squid.
func raiseFileLimit() {
	var lim syscall.Rlimit
	if err := syscall.Getrlimit(syscall.RLIMIT_NOFILE, &lim); err == nil && lim.Cur < lim.Max {
		lim.Cur = lim.Max
		_ = syscall.Setrlimit(syscall.RLIMIT_NOFILE, &lim)
	}
}

// setUp starts everything. Only the upstream is required: an arm that
// cannot start is recorded as skipped with the reason.
func setUp(ctx context.Context, o *options, tmp string, logf io.Writer, progress io.Writer) ([]armSlot, *upstreams, []string, error) {
	want := func(name string) bool { return slices.Contains(o.arms, name) }
	self := proc{role: "client", pid: os.Getpid()}

	up, notes, err := startUpstreams(ctx, tmp, lookBinary("nginx"), logf)
	if err != nil {
		return nil, nil, nil, err
	}
	fmt.Fprintf(progress, "upstream: %s (%s), %s\n", up.static, up.kind, up.dynamic)

	// The slow parts, in parallel: building the gateway, starting the OTLP
	// sink, installing undici.
	var (
		wg               sync.WaitGroup
		gwBin, undiciDir string
		gwErr, undiciErr error
		nodeBin          = lookBinary("node")
		nodeVer          string
		needGateway      = want("gateway_fetch") || want("gateway_fetch_traced") || want("gateway_stream")
		needNPM          = want("undici")
		sink             *otlpSink
		sinkErr          error
	)
	if nodeBin != "" {
		nodeVer = nodeVersion(ctx, nodeBin)
	}
	if needGateway {
		wg.Go(func() { gwBin, gwErr = buildGateway(ctx, o.repo, tmp) })
	}
	if want("gateway_fetch_traced") {
		wg.Go(func() { sink, sinkErr = startOTLPSink(ctx, logf) })
	}
	if needNPM && nodeVer != "" {
		wg.Go(func() { undiciDir, undiciErr = installUndici(ctx, tmp, nodeVer, logf) })
	}
	wg.Wait()
	if sink != nil {
		fmt.Fprintf(progress, "otlp sink: %s (%s; stats http://%s/stats)\n", sink.endpoint(o.otlpProtocol), o.otlpProtocol, sink.statsAddr)
	}

	slots := make(map[string]*armSlot)
	// scenariosOf is where an arm runs; nil: every scenario.
	scenariosOf := func(name string) []string {
		if o.armsGiven {
			return nil
		}
		return defaultScenarios[name]
	}
	skip := func(name, why string) {
		slots[name] = &armSlot{name: name, skip: why, scenarios: scenariosOf(name)}
		fmt.Fprintf(progress, "arm %s: skipped: %s\n", name, why)
	}
	use := func(name string, start func(ctx context.Context) (arm, error)) {
		slots[name] = &armSlot{name: name, start: start, scenarios: scenariosOf(name)}
	}
	upProcs := up.procs

	if want("direct") {
		use("direct", func(context.Context) (arm, error) {
			return newHTTPArm("direct", nil, append([]proc{self}, upProcs...)), nil
		})
	}

	// One gateway process per gateway arm and scenario.
	for _, name := range []string{"gateway_fetch", "gateway_fetch_traced", "gateway_stream"} {
		traced := name == "gateway_fetch_traced"
		switch {
		case !want(name):
		case gwErr != nil:
			skip(name, "gateway unavailable: "+gwErr.Error())
		case traced && sinkErr != nil:
			skip(name, sinkErr.Error())
		default:
			use(name, func(ctx context.Context) (arm, error) {
				env := gatewayEnv()
				if traced {
					env = tracedEnv(o.otlpProtocol, sink.endpoint(o.otlpProtocol))
				}
				gw, err := startGateway(ctx, gwBin, o.gwLog, env, logf)
				if err != nil {
					return nil, err
				}
				procs := append([]proc{{role: "gateway", pid: gw.proc.pid()}, self}, upProcs...)
				if traced {
					procs = append(procs, proc{role: "otlpsink", pid: sink.proc.pid()})
				}
				ga := &gatewayArm{name: name, g: gw, stream: name == "gateway_stream", traced: traced, procs: procs}
				var a arm = ga
				if traced {
					a = &tracedGatewayArm{gatewayArm: ga, sink: sink}
				}
				if err := gw.probe(ctx, up.static+"/small"); err != nil {
					a.Close()
					return nil, err
				}
				return a, nil
			})
		}
	}

	if want("squid") {
		if bin := lookBinary("squid"); bin == "" {
			skip("squid", "squid not installed (bench/run.sh installs it with apt-get)")
		} else {
			use("squid", func(ctx context.Context) (arm, error) {
				addr, ch, err := startSquid(ctx, tmp, bin, logf)
				if err != nil {
					return nil, err
				}
				procs := append([]proc{{role: "squid", pid: ch.pid()}, self}, upProcs...)
				a := newHTTPArm("squid", &url.URL{Scheme: "http", Host: addr}, procs)
				a.stop = func() { ch.stop(5 * time.Second) }
				return a, nil
			})
		}
	}

	script := filepath.Join(o.repo, "bench", "node", "loadgen.js")
	for _, name := range []string{"node_http", "undici"} {
		client, dir := "http", ""
		switch {
		case !want(name):
			continue
		case nodeVer == "":
			skip(name, "node not installed")
			continue
		case name == "undici" && undiciErr != nil:
			skip(name, undiciErr.Error())
			continue
		case name == "undici":
			client, dir = "undici", undiciDir
		}
		use(name, func(ctx context.Context) (arm, error) {
			a, err := startNodeArm(ctx, name, nodeBin, script, client, dir, logf)
			if err != nil {
				return nil, err
			}
			a.procs = append([]proc{{role: "client", pid: a.proc.pid()}}, upProcs...)
			return a, nil
		})
	}

	var out []armSlot
	for _, name := range armNames {
		if s, ok := slots[name]; ok {
			out = append(out, *s)
		}
	}
	if nodeVer != "" {
		notes = append(notes, "node "+nodeVer)
	}
	return out, up, notes, nil
}

// machineLine describes where the run happened, for the table's heading.
func machineLine(up *upstreams, o *options) string {
	cpu := "unknown CPU"
	if b, err := os.ReadFile("/proc/cpuinfo"); err == nil {
		for line := range strings.Lines(string(b)) {
			if k, v, ok := strings.Cut(line, ":"); ok && strings.TrimSpace(k) == "model name" {
				cpu = strings.TrimSpace(v)
				break
			}
		}
	}
	mem := ""
	if b, err := os.ReadFile("/proc/meminfo"); err == nil {
		var kb int64
		if _, err := fmt.Sscanf(string(b), "MemTotal: %d kB", &kb); err == nil {
			mem = fmt.Sprintf(", %.0f GiB RAM", float64(kb)/(1<<20))
		}
	}
	kernel := ""
	if out, err := exec.Command("uname", "-r").Output(); err == nil {
		kernel = ", Linux " + strings.TrimSpace(string(out))
	}
	mode := "full"
	if o.quick {
		mode = "quick"
	}
	return fmt.Sprintf("%s run: %s, %d CPUs%s%s, %s; upstream %s; %d rounds of %s per arm",
		mode, cpu, runtime.NumCPU(), mem, kernel, runtime.Version(), up.kind, o.rounds, o.duration)
}
