package agentpool_test

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/netip"
	"net/textproto"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/httpgateway/httpgateway/internal/agentpool"
)

const waitLimit = 10 * time.Second

// pollUntil checks cond until it holds or limit passes. The pause between
// checks only paces the polling; cond is what the caller waits for.
func pollUntil(limit time.Duration, cond func() bool) bool {
	deadline := time.Now().Add(limit)
	for {
		if cond() {
			return true
		}
		if time.Now().After(deadline) {
			return false
		}
		time.Sleep(2 * time.Millisecond)
	}
}

func recv[T any](t *testing.T, ch <-chan T, what string) T {
	t.Helper()
	select {
	case v := <-ch:
		return v
	case <-time.After(waitLimit):
		t.Fatalf("timed out waiting for %s", what)
		panic("unreachable")
	}
}

// ---- test upstream ----

// upstream is a tiny HTTP/1.1 server speaking exact bytes, so tests control
// keep-alive, closes and timing. handle runs once per request; it returns
// false to close the connection.
type upstream struct {
	ln       net.Listener
	port     int
	wg       sync.WaitGroup
	mu       sync.Mutex
	conns    map[net.Conn]bool
	accepted int
}

type request struct {
	Method, Path string
	Header       textproto.MIMEHeader
	Conn         net.Conn
}

type handler func(w *bufio.Writer, r request) (keep bool)

func startUpstream(t *testing.T, ln net.Listener, h handler) *upstream {
	t.Helper()
	u := &upstream{ln: ln, conns: map[net.Conn]bool{}}
	if ta, ok := ln.Addr().(*net.TCPAddr); ok {
		u.port = ta.Port
	}
	u.wg.Add(1)
	go func() {
		defer u.wg.Done()
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			u.mu.Lock()
			u.conns[c] = true
			u.accepted++
			u.mu.Unlock()
			u.wg.Add(1)
			go func() {
				defer u.wg.Done()
				u.serve(c, h)
			}()
		}
	}()
	t.Cleanup(u.close)
	return u
}

func listenTCP(t *testing.T) net.Listener {
	t.Helper()
	ln, err := net.Listen("tcp4", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	return ln
}

func startHTTP(t *testing.T, h handler) *upstream {
	t.Helper()
	return startUpstream(t, listenTCP(t), h)
}

func (u *upstream) serve(c net.Conn, h handler) {
	defer func() {
		u.mu.Lock()
		delete(u.conns, c)
		u.mu.Unlock()
		_ = c.Close()
	}()
	br := bufio.NewReader(c)
	bw := bufio.NewWriter(c)
	tp := textproto.NewReader(br)
	for {
		line, err := tp.ReadLine()
		if err != nil {
			return
		}
		hdr, err := tp.ReadMIMEHeader()
		if err != nil {
			return
		}
		parts := strings.SplitN(line, " ", 3)
		if len(parts) < 2 {
			return
		}
		keep := h(bw, request{Method: parts[0], Path: parts[1], Header: hdr, Conn: c})
		if bw.Flush() != nil || !keep {
			return
		}
	}
}

func (u *upstream) accepts() int {
	u.mu.Lock()
	defer u.mu.Unlock()
	return u.accepted
}

func (u *upstream) close() {
	_ = u.ln.Close()
	u.mu.Lock()
	for c := range u.conns {
		_ = c.Close()
	}
	u.mu.Unlock()
	u.wg.Wait()
}

// respond writes a 200 with body "ok" and the given extra header lines.
func respond(w *bufio.Writer, extra ...string) {
	fmt.Fprintf(w, "HTTP/1.1 200 OK\r\nContent-Length: 2\r\nConnection: keep-alive\r\n")
	for _, h := range extra {
		fmt.Fprintf(w, "%s\r\n", h)
	}
	fmt.Fprintf(w, "\r\nok")
}

func okHandler(extra ...string) handler {
	return func(w *bufio.Writer, r request) bool { respond(w, extra...); return true }
}

// gatedHandler holds every response until gate is closed.
func gatedHandler(gate <-chan struct{}) handler {
	return func(w *bufio.Writer, r request) bool { <-gate; respond(w); return true }
}

// ---- fake exchange ----

type mode int

const (
	autoRelease mode = iota // release after the response, with its keep-alive hint
	hold                    // read the response, leave the socket to the test
	noRead                  // neither write a request nor read (tests that take the conn)
)

type socketEvent struct {
	s      *agentpool.Socket
	err    error
	reused bool
}

type result struct {
	status int
	header textproto.MIMEHeader
	body   string
	err    error
	reused bool
	port   int // local port of the socket
}

// exchange is a fake engine: it writes "GET path" in OnConnect and reads a
// Content-Length response in ReadResponse.
type exchange struct {
	path      string // request-target: origin-form, or absolute-form through a proxy
	host      string // Host header value; "test" when empty
	headers   []string
	mode      mode
	onSocket  func(s *agentpool.Socket) // optional hook
	socketCh  chan socketEvent
	connectCh chan error
	resultCh  chan result
	timeoutCh chan struct{}
	readCalls chan struct{}

	mu sync.Mutex
	s  *agentpool.Socket
}

func newExchange(path string, m mode) *exchange {
	return &exchange{path: path, mode: m,
		socketCh: make(chan socketEvent, 1), connectCh: make(chan error, 1),
		resultCh: make(chan result, 1), timeoutCh: make(chan struct{}, 16), readCalls: make(chan struct{}, 4)}
}

func (x *exchange) socket() *agentpool.Socket {
	x.mu.Lock()
	defer x.mu.Unlock()
	return x.s
}

func (x *exchange) OnSocket(s *agentpool.Socket, err error) {
	ev := socketEvent{s: s, err: err}
	if s != nil {
		ev.reused = s.Reused()
		x.mu.Lock()
		x.s = s
		x.mu.Unlock()
		if x.onSocket != nil {
			x.onSocket(s)
		}
	}
	x.socketCh <- ev
	if err != nil {
		x.resultCh <- result{err: err}
	}
}

func (x *exchange) OnConnect(err error) {
	x.connectCh <- err
	s := x.socket()
	if err != nil {
		x.resultCh <- result{err: err, reused: s.Reused()}
		return
	}
	if x.mode == noRead {
		return
	}
	host := x.host
	if host == "" {
		host = "test"
	}
	var extra strings.Builder
	for _, h := range x.headers {
		extra.WriteString(h + "\r\n")
	}
	if _, werr := fmt.Fprintf(s.Conn(), "GET %s HTTP/1.1\r\nHost: %s\r\n%s\r\n", x.path, host, extra.String()); werr != nil {
		s.Destroy(werr)
		x.resultCh <- result{err: werr, reused: s.Reused()}
	}
}

func (x *exchange) ReadResponse(br *bufio.Reader) {
	x.readCalls <- struct{}{}
	if x.mode == noRead {
		return
	}
	s := x.socket()
	res := result{reused: s.Reused(), port: localPort(s)}
	res.status, res.header, res.body, res.err = readResponse(br)
	if res.err != nil {
		s.Destroy(res.err)
		x.resultCh <- res
		return
	}
	if x.mode == autoRelease {
		s.Release(!strings.EqualFold(res.header.Get("Connection"), "close"), keepAliveHint(res.header))
	}
	x.resultCh <- res
}

func (x *exchange) OnTimeout() {
	select {
	case x.timeoutCh <- struct{}{}:
	default:
	}
}

func readResponse(br *bufio.Reader) (int, textproto.MIMEHeader, string, error) {
	tp := textproto.NewReader(br)
	line, err := tp.ReadLine()
	if err != nil {
		return 0, nil, "", err
	}
	f := strings.SplitN(line, " ", 3)
	if len(f) < 2 {
		return 0, nil, "", fmt.Errorf("bad status line %q", line)
	}
	code, err := strconv.Atoi(f[1])
	if err != nil {
		return 0, nil, "", err
	}
	h, err := tp.ReadMIMEHeader()
	if err != nil {
		return 0, nil, "", err
	}
	n, _ := strconv.Atoi(h.Get("Content-Length"))
	body := make([]byte, n)
	if _, err := io.ReadFull(br, body); err != nil {
		return 0, nil, "", err
	}
	return code, h, string(body), nil
}

func keepAliveHint(h textproto.MIMEHeader) time.Duration {
	v := h.Get("Keep-Alive")
	if rest, ok := strings.CutPrefix(v, "timeout="); ok {
		if n, err := strconv.Atoi(strings.TrimSpace(strings.SplitN(rest, ",", 2)[0])); err == nil {
			return time.Duration(n) * time.Second
		}
	}
	return 0
}

func localPort(s *agentpool.Socket) int {
	if c := s.Conn(); c != nil {
		if ta, ok := c.LocalAddr().(*net.TCPAddr); ok {
			return ta.Port
		}
	}
	return 0
}

// ---- agents and targets ----

func newAgent(t *testing.T, o agentpool.Options, deps agentpool.Deps) *agentpool.Agent {
	t.Helper()
	a, err := agentpool.New("test", o, deps)
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	t.Cleanup(a.Destroy)
	return a
}

func keepAliveOptions() agentpool.Options {
	o := agentpool.DefaultOptions()
	o.KeepAlive = true
	return o
}

func target(port int) agentpool.Target {
	return agentpool.Target{Protocol: "http:", Host: "127.0.0.1", Port: port}
}

// do runs one request and waits for its result.
func do(t *testing.T, a *agentpool.Agent, tg agentpool.Target, m mode) (*exchange, result) {
	t.Helper()
	x := newExchange("/", m)
	a.Acquire(tg, x)
	return x, recv(t, x.resultCh, "result")
}

// waitEvent reads events until one matches.
func waitEvent(t *testing.T, sub *agentpool.Subscription, match func(agentpool.Event) bool) agentpool.Event {
	t.Helper()
	timeout := time.After(waitLimit)
	for {
		select {
		case e, ok := <-sub.C():
			if !ok {
				t.Fatal("subscription closed while waiting for an event")
			}
			if match(e) {
				return e
			}
		case <-timeout:
			t.Fatal("timed out waiting for an event")
		}
	}
}

func isType(typ agentpool.EventType) func(agentpool.Event) bool {
	return func(e agentpool.Event) bool { return e.Type == typ }
}

// fakeResolver answers from a table; hosts mapped to nil block until the
// context ends.
type fakeResolver struct {
	answers map[string][]netip.Addr
	errs    map[string]error
}

func (r fakeResolver) LookupNetIP(ctx context.Context, network, host string) ([]netip.Addr, error) {
	if err, ok := r.errs[host]; ok {
		return nil, err
	}
	addrs, ok := r.answers[host]
	if !ok {
		return nil, &net.DNSError{Name: host, Err: "no such host", IsNotFound: true}
	}
	if addrs == nil {
		<-ctx.Done()
		return nil, &net.DNSError{Name: host, Err: ctx.Err().Error(), IsTimeout: errors.Is(ctx.Err(), context.DeadlineExceeded)}
	}
	return addrs, nil
}

func snapshotName(a *agentpool.Agent, name string) agentpool.NameSnapshot {
	for _, n := range a.Snapshot().Names {
		if n.Name == name {
			return n
		}
	}
	return agentpool.NameSnapshot{Name: name}
}
