package main

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"time"
)

// The Node arms run bench/node/loadgen.js as a long-lived process: the
// harness writes one JSON command per line on its stdin ({"op":"run",
// "job":{...}} or {"op":"release"}) and reads one JSON line back (a
// roundResult). The same process serves every round, so its JIT is warm
// and its pools persist, like a real service's; its CPU and memory are
// measured from /proc like every other process.

// nodeArm is node_http (http.request with a keep-alive http.Agent) or
// undici (undici's Agent).
type nodeArm struct {
	name  string
	proc  *child
	in    io.Writer
	out   *bufio.Reader
	procs []proc

	mu sync.Mutex // serialises commands
}

// nodeVersion returns node's version ("20.11.1"), or "" when node is missing.
func nodeVersion(ctx context.Context, bin string) string {
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	out, err := exec.CommandContext(ctx, bin, "-p", "process.versions.node").Output()
	if err != nil {
		return ""
	}
	return strings.TrimSpace(string(out))
}

// undiciSpec picks an undici release that supports this node: undici 7
// needs node 20.18.1 or later, undici 6 runs on node 18.
func undiciSpec(version string) string {
	var v [3]int
	for i, s := range strings.SplitN(version, ".", 3) {
		v[i], _ = strconv.Atoi(s)
	}
	if v[0] > 20 || (v[0] == 20 && (v[1] > 18 || (v[1] == 18 && v[2] >= 1))) {
		return "undici@7"
	}
	return "undici@6"
}

// installUndici installs undici into dir with npm and returns the package
// folder to require.
func installUndici(ctx context.Context, dir, version string, logf io.Writer) (string, error) {
	npm, err := exec.LookPath("npm")
	if err != nil {
		return "", errors.New("npm not installed")
	}
	ctx, cancel := context.WithTimeout(ctx, 3*time.Minute)
	defer cancel()
	prefix := filepath.Join(dir, "undici")
	if err := os.MkdirAll(prefix, 0o755); err != nil {
		return "", err
	}
	cmd := exec.CommandContext(ctx, npm, "install", "--prefix", prefix, "--no-audit", "--no-fund",
		"--loglevel=error", undiciSpec(version))
	cmd.Dir = prefix
	out, err := cmd.CombinedOutput()
	_, _ = logf.Write(out)
	if err != nil {
		return "", fmt.Errorf("npm install %s: %w: %s", undiciSpec(version), err, lastLines(string(out), 5))
	}
	return filepath.Join(prefix, "node_modules", "undici"), nil
}

// startNodeArm starts loadgen.js for client "http" or "undici".
func startNodeArm(ctx context.Context, name, nodeBin, script, client, undiciDir string, logf io.Writer) (*nodeArm, error) {
	args := []string{script, client}
	if undiciDir != "" {
		args = append(args, undiciDir)
	}
	cmd := exec.CommandContext(ctx, nodeBin, args...)
	in, err := cmd.StdinPipe()
	if err != nil {
		return nil, err
	}
	out, err := cmd.StdoutPipe()
	if err != nil {
		return nil, err
	}
	ch, err := kids.start(name, cmd, logf)
	if err != nil {
		return nil, err
	}
	a := &nodeArm{name: name, proc: ch, in: in, out: bufio.NewReaderSize(out, 1<<20)}
	var ready struct {
		Ready bool `json:"ready"`
	}
	if err := a.call(ctx, map[string]any{"op": "hello"}, 30*time.Second, &ready); err != nil || !ready.Ready {
		ch.stop(time.Second)
		return nil, fmt.Errorf("%s did not start: %v: %s", name, err, ch.tail)
	}
	return a, nil
}

// call sends one command and decodes the answer line into v. On a timeout
// the process is killed: its state is unknown, and the arm fails from then on.
func (a *nodeArm) call(ctx context.Context, cmd any, timeout time.Duration, v any) error {
	a.mu.Lock()
	defer a.mu.Unlock()
	if a.proc.exited() {
		return fmt.Errorf("%s exited: %s", a.name, a.proc.tail)
	}
	b, err := json.Marshal(cmd)
	if err != nil {
		return err
	}
	if _, err := a.in.Write(append(b, '\n')); err != nil {
		return fmt.Errorf("%s: %w", a.name, err)
	}
	type answer struct {
		line []byte
		err  error
	}
	got := make(chan answer, 1)
	go func() { // ends with the line, or when the process dies
		line, err := a.out.ReadBytes('\n')
		got <- answer{line, err}
	}()
	select {
	case ans := <-got:
		if ans.err != nil {
			return fmt.Errorf("%s: %w: %s", a.name, ans.err, a.proc.tail)
		}
		return json.Unmarshal(ans.line, v)
	case <-time.After(timeout):
	case <-ctx.Done():
	}
	a.proc.stop(time.Second)
	<-got
	return fmt.Errorf("%s: no answer within %s; killed", a.name, timeout)
}

func (a *nodeArm) Name() string                                   { return a.name }
func (a *nodeArm) Procs() []proc                                  { return a.procs }
func (a *nodeArm) Goroutines() func(context.Context) (int, error) { return nil }

func (a *nodeArm) Close() { a.proc.stop(2 * time.Second) }

func (a *nodeArm) Run(ctx context.Context, j job) (roundResult, error) {
	var r roundResult
	err := a.call(ctx, map[string]any{"op": "run", "job": j}, jobBound(j), &r)
	return r, err
}

func (a *nodeArm) Release(ctx context.Context) {
	var ok map[string]any
	_ = a.call(ctx, map[string]any{"op": "release"}, 10*time.Second, &ok)
}

// jobBound is how long a round may take before its arm is declared stuck.
func jobBound(j job) time.Duration {
	return time.Duration(j.DurationMS+2*j.TimeoutMS)*time.Millisecond + 30*time.Second
}
