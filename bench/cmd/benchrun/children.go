package main

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"strings"
	"sync"
	"syscall"
	"time"
)

// children are the processes the harness started. Each runs in its own
// process group, so stopping one also stops anything it forked; all are
// stopped at exit, Ctrl-C included (main's signal handling calls stopAll).
type children struct {
	mu   sync.Mutex // guards list
	list []*child
}

// child is one started process.
type child struct {
	name string
	cmd  *exec.Cmd
	done chan struct{} // closed once Wait returned
	tail *tailBuffer   // the last lines of its stderr (and stdout when not piped)
}

var kids children

// start starts cmd as a child named name. Its stderr (and stdout, unless
// the caller took it) goes to the log file and a small tail kept for error
// messages.
func (c *children) start(name string, cmd *exec.Cmd, logFile io.Writer) (*child, error) {
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
	ch := &child{name: name, cmd: cmd, done: make(chan struct{}), tail: &tailBuffer{max: 20}}
	w := io.MultiWriter(logFile, ch.tail)
	if cmd.Stderr == nil {
		cmd.Stderr = w
	}
	if cmd.Stdout == nil {
		cmd.Stdout = w
	}
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("start %s: %w", name, err)
	}
	go func() { // ends when the process exits
		_ = cmd.Wait()
		close(ch.done)
	}()
	c.mu.Lock()
	c.list = append(c.list, ch)
	c.mu.Unlock()
	return ch, nil
}

func (ch *child) pid() int { return ch.cmd.Process.Pid }

func (ch *child) exited() bool {
	select {
	case <-ch.done:
		return true
	default:
		return false
	}
}

// stop sends SIGTERM to the child's process group, then SIGKILL after grace.
func (ch *child) stop(grace time.Duration) {
	if ch.exited() {
		return
	}
	_ = syscall.Kill(-ch.pid(), syscall.SIGTERM)
	select {
	case <-ch.done:
	case <-time.After(grace):
		_ = syscall.Kill(-ch.pid(), syscall.SIGKILL)
		select {
		case <-ch.done:
		case <-time.After(2 * time.Second):
		}
	}
}

// stopAll stops every child, newest first, in parallel.
func (c *children) stopAll() {
	c.mu.Lock()
	list := c.list
	c.list = nil
	c.mu.Unlock()
	var wg sync.WaitGroup
	for _, ch := range list {
		wg.Go(func() { ch.stop(3 * time.Second) })
	}
	wg.Wait()
}

// tailBuffer keeps the last max lines written to it.
type tailBuffer struct {
	max int

	mu    sync.Mutex // guards lines and part
	lines []string
	part  string
}

func (t *tailBuffer) Write(p []byte) (int, error) {
	t.mu.Lock()
	defer t.mu.Unlock()
	s := t.part + string(p)
	parts := strings.Split(s, "\n")
	t.part = parts[len(parts)-1]
	t.lines = append(t.lines, parts[:len(parts)-1]...)
	if over := len(t.lines) - t.max; over > 0 {
		t.lines = t.lines[over:]
	}
	return len(p), nil
}

func (t *tailBuffer) String() string {
	t.mu.Lock()
	defer t.mu.Unlock()
	return strings.Join(append(t.lines, t.part), "\n")
}

// waitLine reads r line by line until match returns a value, the reader
// ends, or timeout passes. Every line read also goes to sink; after a match
// the rest of r keeps being copied to sink in the background, so the child
// never blocks on a full pipe.
func waitLine(r io.Reader, sink io.Writer, timeout time.Duration, match func(string) (string, bool)) (string, error) {
	type found struct {
		v   string
		err error
	}
	res := make(chan found, 1)
	go func() { // ends when r ends (the child exited or closed its output)
		br := bufio.NewReader(r)
		matched := false
		for {
			line, err := br.ReadString('\n')
			if line != "" {
				_, _ = io.WriteString(sink, line)
			}
			if !matched {
				if v, ok := match(strings.TrimRight(line, "\r\n")); ok {
					matched = true
					res <- found{v: v}
				}
			}
			if err != nil {
				if !matched {
					res <- found{err: fmt.Errorf("output ended before the expected line: %w", err)}
				}
				return
			}
		}
	}()
	select {
	case f := <-res:
		return f.v, f.err
	case <-time.After(timeout):
		return "", errors.New("timed out waiting for the process to report ready")
	}
}

// waitTCP waits until addr accepts connections.
func waitTCP(ctx context.Context, addr string, timeout time.Duration) error {
	deadline := time.Now().Add(timeout)
	for {
		c, err := net.DialTimeout("tcp", addr, time.Second)
		if err == nil {
			c.Close()
			return nil
		}
		if time.Now().After(deadline) || ctx.Err() != nil {
			return fmt.Errorf("%s does not accept connections: %w", addr, err)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// freePort returns a loopback port that was free a moment ago, for servers
// (nginx, squid) that cannot listen on port 0 and report it.
func freePort() (int, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port, nil
}

// lookBinary finds a program in PATH or in the usual sbin folders (which a
// non-root PATH may lack).
func lookBinary(name string) string {
	if p, err := exec.LookPath(name); err == nil {
		return p
	}
	for _, dir := range []string{"/usr/sbin", "/sbin", "/usr/local/sbin"} {
		p := dir + "/" + name
		if st, err := os.Stat(p); err == nil && !st.IsDir() && st.Mode()&0o111 != 0 {
			return p
		}
	}
	return ""
}
