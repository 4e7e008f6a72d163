package main

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"time"
)

// Per-process figures come from /proc, so they hold when the processes
// share cores: CPU time is what the kernel charged to each process, not
// wall time.

// clockTicks is sysconf(_SC_CLK_TCK), 100 on every Linux architecture Go
// supports; /proc/<pid>/stat counts utime and stime in these.
const clockTicks = 100

// proc is one process whose CPU time and memory a run measures.
type proc struct {
	role string // "client", "gateway", "squid", "upstream", "nginx", ...
	pid  int
}

// cpuTime returns the CPU time pid has used so far. It prefers the sum of
// the first field of /proc/<pid>/task/*/schedstat (nanoseconds on CPU),
// which is precise; threads that exited drop out of that sum, so it falls
// back to utime+stime of /proc/<pid>/stat (10 ms ticks, exited threads
// included) when schedstat is unavailable.
func cpuTime(pid int) (time.Duration, error) {
	if d, err := schedstatTime(pid); err == nil {
		return d, nil
	}
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return 0, err
	}
	return parseStatCPU(b)
}

func schedstatTime(pid int) (time.Duration, error) {
	dirs, err := filepath.Glob(fmt.Sprintf("/proc/%d/task/*/schedstat", pid))
	if err != nil || len(dirs) == 0 {
		return 0, errors.New("no schedstat")
	}
	var total time.Duration
	for _, p := range dirs {
		b, err := os.ReadFile(p)
		if err != nil {
			continue // the thread exited between the glob and the read
		}
		ns, err := parseSchedstat(b)
		if err != nil {
			return 0, err
		}
		total += ns
	}
	return total, nil
}

// parseSchedstat reads the first field of a schedstat file: nanoseconds
// spent on the CPU.
func parseSchedstat(b []byte) (time.Duration, error) {
	f := strings.Fields(string(b))
	if len(f) < 1 {
		return 0, fmt.Errorf("schedstat: empty")
	}
	ns, err := strconv.ParseInt(f[0], 10, 64)
	if err != nil {
		return 0, fmt.Errorf("schedstat: %w", err)
	}
	return time.Duration(ns), nil
}

// parseStatCPU reads utime+stime (fields 14 and 15) of /proc/<pid>/stat.
// The command name (field 2) may hold spaces and parentheses, so fields are
// counted from the last ')'.
func parseStatCPU(b []byte) (time.Duration, error) {
	i := bytes.LastIndexByte(b, ')')
	if i < 0 {
		return 0, errors.New("stat: no command name")
	}
	f := strings.Fields(string(b[i+1:]))
	// f[0] is field 3 (state); utime is field 14, stime field 15.
	if len(f) < 13 {
		return 0, errors.New("stat: too few fields")
	}
	ut, err1 := strconv.ParseInt(f[11], 10, 64)
	st, err2 := strconv.ParseInt(f[12], 10, 64)
	if err := errors.Join(err1, err2); err != nil {
		return 0, fmt.Errorf("stat: %w", err)
	}
	return time.Duration(ut+st) * time.Second / clockTicks, nil
}

// memStatus is what /proc/<pid>/status says about memory, in KiB.
type memStatus struct {
	rssKiB, hwmKiB int64
}

func readMem(pid int) (memStatus, error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return memStatus{}, err
	}
	return parseStatus(b)
}

// parseStatus reads VmRSS and VmHWM ("VmRSS:	  1234 kB").
func parseStatus(b []byte) (memStatus, error) {
	var m memStatus
	found := 0
	sc := bufio.NewScanner(bytes.NewReader(b))
	for sc.Scan() {
		name, rest, ok := strings.Cut(sc.Text(), ":")
		if !ok || (name != "VmRSS" && name != "VmHWM") {
			continue
		}
		f := strings.Fields(rest)
		if len(f) < 1 {
			continue
		}
		v, err := strconv.ParseInt(f[0], 10, 64)
		if err != nil {
			return m, fmt.Errorf("status %s: %w", name, err)
		}
		if name == "VmRSS" {
			m.rssKiB = v
		} else {
			m.hwmKiB = v
		}
		found++
	}
	if found == 0 {
		return m, errors.New("status: no VmRSS (kernel thread or exited)")
	}
	return m, nil
}

// parseGoroutineTotal reads the first line of /debug/pprof/goroutine?debug=1:
// "goroutine profile: total N".
func parseGoroutineTotal(b []byte) (int, error) {
	line, _, _ := bytes.Cut(b, []byte("\n"))
	const prefix = "goroutine profile: total "
	s, ok := strings.CutPrefix(string(line), prefix)
	if !ok {
		return 0, fmt.Errorf("pprof: unexpected first line %q", line)
	}
	return strconv.Atoi(strings.TrimSpace(s))
}

// fetchGoroutines asks a Go process's pprof endpoint for its goroutine count.
func fetchGoroutines(ctx context.Context, adminAddr string) (int, error) {
	ctx, cancel := context.WithTimeout(ctx, 2*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, "http://"+adminAddr+"/debug/pprof/goroutine?debug=1", nil)
	if err != nil {
		return 0, err
	}
	resp, err := adminClient.Do(req)
	if err != nil {
		return 0, err
	}
	defer resp.Body.Close()
	// The first line is all we need; the stacks can be long.
	br := bufio.NewReaderSize(resp.Body, 256)
	line, err := br.ReadSlice('\n')
	if err != nil {
		return 0, fmt.Errorf("pprof: %w", err)
	}
	return parseGoroutineTotal(line)
}

// adminClient talks to the gateway's admin listener; it is not any arm's
// client, so its connections never count as an arm's.
var adminClient = &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 2}}

// established counts ESTABLISHED TCP connections in /proc/net/tcp whose
// remote port is port: the client sides of connections to an upstream,
// whoever holds them. One arm runs at a time, so the change across a run
// is that arm's pool.
func established(port int) (int, error) {
	b, err := os.ReadFile("/proc/net/tcp")
	if err != nil {
		return 0, err
	}
	return countEstablished(b, port), nil
}

// countEstablished parses /proc/net/tcp lines
// ("  0: 0100007F:1F90 0100007F:C350 01 ...": local, remote, state 01).
func countEstablished(b []byte, port int) int {
	want := fmt.Sprintf(":%04X", port)
	n := 0
	for line := range strings.Lines(string(b)) {
		f := strings.Fields(line)
		if len(f) < 4 || f[3] != "01" {
			continue
		}
		if strings.HasSuffix(f[2], want) {
			n++
		}
	}
	return n
}

// sampler watches one process's RSS (and a goroutine count, where the arm
// has one) during a run, keeping the largest and the latest values.
type sampler struct {
	pid        int
	goroutines func(context.Context) (int, error) // nil: not a Go process
	every      time.Duration

	mu              sync.Mutex // guards the fields below
	maxRSS, lastRSS int64
	maxGor, lastGor int
	haveGor         bool
	firstErr        error
	stop            context.CancelFunc
	done            chan struct{}
	baselineRSS     int64 // RSS when the run started
	baselineGor     int   // goroutines when the run started (haveBaseGor)
	haveBaseGor     bool
}

func startSampler(ctx context.Context, pid int, goroutines func(context.Context) (int, error), every time.Duration) *sampler {
	s := &sampler{pid: pid, goroutines: goroutines, every: every, done: make(chan struct{})}
	if m, err := readMem(pid); err == nil {
		s.baselineRSS = m.rssKiB
	}
	if goroutines != nil {
		if g, err := goroutines(ctx); err == nil {
			s.baselineGor, s.haveBaseGor = g, true
		}
	}
	ctx, s.stop = context.WithCancel(ctx)
	go s.loop(ctx) // ends when finish cancels ctx
	return s
}

func (s *sampler) loop(ctx context.Context) {
	defer close(s.done)
	t := time.NewTicker(s.every)
	defer t.Stop()
	for tick := 0; ; tick++ {
		// Goroutine counts cost the gateway a stop-the-world each: ask
		// for one every fifth tick only.
		s.sample(ctx, tick%5 == 0)
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

// sample takes one reading now.
func (s *sampler) sample(ctx context.Context, withGoroutines bool) {
	m, err := readMem(s.pid)
	var g int
	var gerr error
	if s.goroutines != nil && withGoroutines {
		g, gerr = s.goroutines(ctx)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if err == nil {
		s.lastRSS = m.rssKiB
		s.maxRSS = max(s.maxRSS, m.rssKiB)
	} else if s.firstErr == nil {
		s.firstErr = err
	}
	if s.goroutines != nil && withGoroutines && gerr == nil {
		s.lastGor, s.haveGor = g, true
		s.maxGor = max(s.maxGor, g)
	}
}

// samples are a sampler's findings.
type samples struct {
	maxRSS, lastRSS, baselineRSS int64
	maxGor, lastGor              int
	haveGor                      bool
	baselineGor                  int
	haveBaseGor                  bool
}

// finish takes a last reading, stops the loop and returns the figures.
func (s *sampler) finish(ctx context.Context) samples {
	s.stop()
	<-s.done
	s.sample(ctx, true)
	s.mu.Lock()
	defer s.mu.Unlock()
	return samples{maxRSS: s.maxRSS, lastRSS: s.lastRSS, baselineRSS: s.baselineRSS,
		maxGor: s.maxGor, lastGor: s.lastGor, haveGor: s.haveGor, baselineGor: s.baselineGor, haveBaseGor: s.haveBaseGor}
}
