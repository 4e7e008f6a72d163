package egress_test

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/httpgateway/httpgateway/internal/testutil"

	"github.com/httpgateway/httpgateway/internal/agentpool"
	"github.com/httpgateway/httpgateway/internal/egress"
	"github.com/httpgateway/httpgateway/internal/nodeerr"
)

const waitLimit = 10 * time.Second

// exchange is the smallest agentpool.Exchange: on connect it sends one GET
// with Connection: close, reads the status, and releases the socket.
type exchange struct {
	connectCh chan error // OnConnect's error, or OnSocket's
	statusCh  chan int

	mu sync.Mutex
	s  *agentpool.Socket
}

func newExchange() *exchange {
	return &exchange{connectCh: make(chan error, 1), statusCh: make(chan int, 1)}
}

func (x *exchange) OnSocket(s *agentpool.Socket, err error) {
	if err != nil {
		x.connectCh <- err
		return
	}
	x.mu.Lock()
	x.s = s
	x.mu.Unlock()
}

func (x *exchange) OnConnect(err error) {
	if err != nil {
		x.connectCh <- err
		return
	}
	x.mu.Lock()
	s := x.s
	x.mu.Unlock()
	if _, err := io.WriteString(s.Conn(), "GET / HTTP/1.1\r\nHost: svc.test\r\nConnection: close\r\n\r\n"); err != nil {
		s.Destroy(err)
		x.connectCh <- err
		return
	}
	x.connectCh <- nil
}

func (x *exchange) ReadResponse(br *bufio.Reader) {
	x.mu.Lock()
	s := x.s
	x.mu.Unlock()
	resp, err := http.ReadResponse(br, nil)
	if err != nil {
		s.Destroy(err)
		x.statusCh <- 0
		return
	}
	_, _ = io.Copy(io.Discard, resp.Body)
	_ = resp.Body.Close()
	s.Release(false, 0)
	x.statusCh <- resp.StatusCode
}

func (x *exchange) OnTimeout() {}

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

// The policy plugged into a real Agent, against a loopback server. Only
// loopback is ever dialed: the guard fails the test if the policy allows
// any other address, and every non-loopback address in these cases is one
// the policy must deny before the dial.
func TestThroughAgent(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		w.WriteHeader(http.StatusTeapot)
	}))
	t.Cleanup(srv.Close)
	srvAddr := netip.MustParseAddrPort(srv.Listener.Addr().String())
	port := int(srvAddr.Port())
	allowLoopback := []string{"127.0.0.1/32"}

	type request struct {
		host string
		rule string // "" = connects and gets the server's 418
	}
	tests := []struct {
		name     string
		opts     egress.Options
		answers  map[string][][]string
		requests []request
	}{
		{name: "explicitly allowed loopback server", opts: egress.Options{Allow: allowLoopback},
			answers:  map[string][][]string{"svc.test": {{"127.0.0.1"}}},
			requests: []request{{host: "svc.test"}, {host: "127.0.0.1"}}},
		{name: "same server denied by default",
			answers: map[string][][]string{"svc.test": {{"127.0.0.1"}}},
			requests: []request{
				{host: "svc.test", rule: "default-deny:loopback 127.0.0.0/8"},
				{host: "127.0.0.1", rule: "default-deny:loopback 127.0.0.0/8"},
				{host: "::ffff:127.0.0.1", rule: "default-deny:loopback 127.0.0.0/8"},
			}},
		{name: "numeric forms resolve without DNS and are denied by default",
			requests: []request{
				{host: "127.1", rule: "default-deny:loopback 127.0.0.0/8"},
				{host: "2130706433", rule: "default-deny:loopback 127.0.0.0/8"},
				{host: "0x7f000001", rule: "default-deny:loopback 127.0.0.0/8"},
				{host: "0177.0.0.1", rule: "default-deny:loopback 127.0.0.0/8"},
			}},
		{name: "numeric forms reach the allowed server", opts: egress.Options{Allow: allowLoopback},
			requests: []request{{host: "127.1"}, {host: "2130706433"}, {host: "0x7f000001"}, {host: "0177.0.0.1"}}},
		{name: "rebinding: allowed first, metadata next", opts: egress.Options{Allow: allowLoopback},
			answers: map[string][][]string{"rebind.test": {{"127.0.0.1"}, {"169.254.169.254"}, {"::ffff:10.0.0.1"}}},
			requests: []request{
				{host: "rebind.test"},
				{host: "rebind.test", rule: "default-deny:link-local 169.254.0.0/16"},
				{host: "rebind.test", rule: "default-deny:private 10.0.0.0/8"},
			}},
		{name: "the gateway's own listener, even when allowed",
			opts:     egress.Options{Allow: allowLoopback, SelfAddrs: []netip.AddrPort{srvAddr}},
			requests: []request{{host: "127.1", rule: "self:" + srvAddr.String()}}},
		{name: "denied answer skipped, allowed answer dialed", opts: egress.Options{Allow: allowLoopback},
			answers:  map[string][][]string{"multi.test": {{"169.254.169.254", "10.0.0.1", "127.0.0.1"}}},
			requests: []request{{host: "multi.test"}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			testutil.CheckLeaks(t)
			p := mustPolicy(t, tt.opts)
			guard := func(ctx context.Context, host string, ap netip.AddrPort) error {
				err := p.Check(ctx, host, ap)
				if err == nil && !ap.Addr().Unmap().IsLoopback() {
					t.Errorf("policy allowed a dial of %s (%s): tests must only dial loopback", ap, host)
					return errors.New("test guard: not loopback")
				}
				return err
			}
			a, err := agentpool.New("egress-test", agentpool.DefaultOptions(), agentpool.Deps{
				Resolver:        egress.NewResolver(newFakeResolver(tt.answers)),
				Check:           guard,
				CheckSocketPath: p.CheckSocketPath,
			})
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(a.Destroy)
			for i, rq := range tt.requests {
				t.Run(strconv.Itoa(i)+" "+rq.host, func(t *testing.T) {
					x := newExchange()
					a.Acquire(agentpool.Target{Protocol: "http:", Host: rq.host, Port: port}, x)
					err := recv(t, x.connectCh, "connect")
					if rq.rule == "" {
						if err != nil {
							t.Fatalf("connect: %v", err)
						}
						if st := recv(t, x.statusCh, "response"); st != http.StatusTeapot {
							t.Fatalf("status %d", st)
						}
						return
					}
					d, ok := egress.DecisionOf(err)
					if nodeerr.Code(err) != nodeerr.ERR_GATEWAY_EGRESS_DENIED || !ok || d.Rule != rq.rule {
						t.Fatalf("connect error %v, want ERR_GATEWAY_EGRESS_DENIED by %q", err, rq.rule)
					}
					if want := fmt.Sprintf("egress denied by rule %s: ", rq.rule); nodeerr.As(err).Message[:len(want)] != want {
						t.Fatalf("message %q", nodeerr.As(err).Message)
					}
				})
			}
		})
	}
}

// Unix sockets go through CheckSocketPath: denied unless listed.
func TestThroughAgentSocketPath(t *testing.T) {
	testutil.CheckLeaks(t)
	p := mustPolicy(t, egress.Options{})
	a, err := agentpool.New("egress-test", agentpool.DefaultOptions(), agentpool.Deps{Check: p.Check, CheckSocketPath: p.CheckSocketPath})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(a.Destroy)
	x := newExchange()
	a.Acquire(agentpool.Target{Protocol: "http:", Host: "localhost", SocketPath: "/var/run/docker.sock"}, x)
	err = recv(t, x.connectCh, "connect")
	if d, ok := egress.DecisionOf(err); !ok || d.Rule != "default-deny:unix-socket" || nodeerr.Code(err) != nodeerr.ERR_GATEWAY_EGRESS_DENIED {
		t.Fatalf("connect error %v", err)
	}
}
