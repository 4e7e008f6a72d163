package agentpool_test

import (
	"bufio"
	"fmt"
	"io"
	"net/netip"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/httpgateway/httpgateway/internal/testutil"

	"github.com/httpgateway/httpgateway/internal/agentpool"
	"github.com/httpgateway/httpgateway/internal/nodeerr"
)

func TestGetName(t *testing.T) {
	no := false
	colons := strings.Repeat(":", 20)
	tests := []struct {
		name    string
		agentTL *agentpool.TLSOptions
		target  agentpool.Target
		want    string
	}{
		{name: "http", target: agentpool.Target{Protocol: "http:", Host: "127.0.0.1", Port: 8080}, want: "127.0.0.1:8080:"},
		{name: "default host, no port", target: agentpool.Target{Protocol: "http:"}, want: "localhost::"},
		{name: "local address", target: agentpool.Target{Protocol: "http:", Host: "h", Port: 80, LocalAddress: "127.0.0.1"}, want: "h:80:127.0.0.1"},
		{name: "family 4", target: agentpool.Target{Protocol: "http:", Host: "h", Port: 80, Family: 4}, want: "h:80::4"},
		{name: "family 6", target: agentpool.Target{Protocol: "http:", Host: "::1", Port: 80, Family: 6}, want: "::1:80::6"},
		{name: "family 0 not appended", target: agentpool.Target{Protocol: "http:", Host: "h", Port: 80, Family: 0}, want: "h:80:"},
		{name: "unix socket", target: agentpool.Target{Protocol: "http:", Host: "localhost", SocketPath: "/tmp/s.sock"}, want: "localhost:::/tmp/s.sock"},
		{name: "https defaults", target: agentpool.Target{Protocol: "https:", Host: "h", Port: 443}, want: "h:443:" + colons},
		{
			name: "https options in Node's order",
			target: agentpool.Target{Protocol: "https:", Host: "h", Port: 443, TLS: &agentpool.TLSOptions{
				CA: []byte("CA"), Cert: []byte("CERT"), Key: []byte("KEY"), Ciphers: "AES128-SHA",
				RejectUnauthorized: &no, ServerName: "sni.test", MinVersion: "TLSv1.2", MaxVersion: "TLSv1.3"}},
			want: "h:443::CA:CERT::AES128-SHA:KEY::false:sni.test:TLSv1.2:TLSv1.3" + strings.Repeat(":", 10),
		},
		{
			name:   "servername equal to host is left out",
			target: agentpool.Target{Protocol: "https:", Host: "h", Port: 443, TLS: &agentpool.TLSOptions{ServerName: "h"}},
			want:   "h:443:" + colons,
		},
		{
			name:    "agent TLS options win, as Node spreads agent options last",
			agentTL: &agentpool.TLSOptions{CA: []byte("AGENTCA")},
			target:  agentpool.Target{Protocol: "https:", Host: "h", Port: 443, TLS: &agentpool.TLSOptions{CA: []byte("REQCA")}},
			want:    "h:443::AGENTCA" + strings.Repeat(":", 19),
		},
		{
			name:    "agent TLS options do not touch http names",
			agentTL: &agentpool.TLSOptions{CA: []byte("AGENTCA")},
			target:  agentpool.Target{Protocol: "http:", Host: "h", Port: 80},
			want:    "h:80:",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			o := agentpool.DefaultOptions()
			o.TLS = tt.agentTL
			a := newAgent(t, o, agentpool.Deps{})
			if got := a.GetName(tt.target); got != tt.want {
				t.Fatalf("GetName = %q, want %q", got, tt.want)
			}
		})
	}
}

func TestOptions(t *testing.T) {
	if d := agentpool.DefaultOptions(); d.KeepAlive || d.MaxFreeSockets != 256 || d.KeepAliveMsecs != time.Second ||
		d.Scheduling != agentpool.LIFO || d.Timeout != 0 || d.KeepAliveTimeoutBuffer != time.Second {
		t.Errorf("DefaultOptions = %+v", d)
	}
	if g := agentpool.GlobalOptions(); !g.KeepAlive || g.Timeout != 5*time.Second || g.Scheduling != agentpool.LIFO ||
		g.MaxFreeSockets != 256 || g.MaxSockets != 0 || g.MaxTotalSockets != 0 {
		t.Errorf("GlobalOptions = %+v", g)
	}
	tests := []struct {
		name   string
		modify func(*agentpool.Options)
		code   string
	}{
		{name: "defaults", modify: func(*agentpool.Options) {}},
		{name: "zero value takes Node defaults", modify: func(o *agentpool.Options) { *o = agentpool.Options{} }},
		{name: "negative maxSockets", modify: func(o *agentpool.Options) { o.MaxSockets = -1 }, code: nodeerr.ERR_OUT_OF_RANGE},
		{name: "negative maxTotalSockets", modify: func(o *agentpool.Options) { o.MaxTotalSockets = -1 }, code: nodeerr.ERR_OUT_OF_RANGE},
		{name: "negative maxFreeSockets", modify: func(o *agentpool.Options) { o.MaxFreeSockets = -3 }, code: nodeerr.ERR_OUT_OF_RANGE},
		{name: "negative timeout", modify: func(o *agentpool.Options) { o.Timeout = -time.Second }, code: nodeerr.ERR_OUT_OF_RANGE},
		{name: "negative keepAliveMsecs", modify: func(o *agentpool.Options) { o.KeepAliveMsecs = -1 }, code: nodeerr.ERR_OUT_OF_RANGE},
		{name: "negative buffer", modify: func(o *agentpool.Options) { o.KeepAliveTimeoutBuffer = -1 }, code: nodeerr.ERR_OUT_OF_RANGE},
		{name: "bad scheduling", modify: func(o *agentpool.Options) { o.Scheduling = 7 }, code: nodeerr.ERR_INVALID_ARG_VALUE},
		{name: "bad TLS version", modify: func(o *agentpool.Options) { o.TLS = &agentpool.TLSOptions{MinVersion: "SSLv3"} }, code: nodeerr.ERR_INVALID_ARG_VALUE},
		{name: "no cipher match", modify: func(o *agentpool.Options) { o.TLS = &agentpool.TLSOptions{Ciphers: "NOPE"} }, code: "ERR_SSL_NO_CIPHER_MATCH"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			o := agentpool.DefaultOptions()
			tt.modify(&o)
			err := o.Validate()
			if got := nodeerr.Code(err); got != tt.code {
				t.Fatalf("Validate() = %v (code %q), want code %q", err, got, tt.code)
			}
			a, nerr := agentpool.New("x", o, agentpool.Deps{})
			if (nerr != nil) != (tt.code != "") {
				t.Fatalf("New error = %v, want error %v", nerr, tt.code != "")
			}
			if a != nil {
				if eff := a.Options(); eff.MaxFreeSockets != 256 || eff.KeepAliveMsecs != time.Second {
					t.Fatalf("effective options %+v lack Node defaults", eff)
				}
			}
		})
	}
	if s, err := agentpool.ParseScheduling("fifo"); err != nil || s != agentpool.FIFO || s.String() != "fifo" {
		t.Errorf("ParseScheduling(fifo) = %v, %v", s, err)
	}
	if _, err := agentpool.ParseScheduling("random"); nodeerr.Code(err) != nodeerr.ERR_INVALID_ARG_VALUE {
		t.Errorf("ParseScheduling(random) error = %v", err)
	}
}

func TestReusedOnSecondRequest(t *testing.T) {
	testutil.CheckLeaks(t)
	up := startHTTP(t, okHandler())
	a := newAgent(t, keepAliveOptions(), agentpool.Deps{})
	sub := a.Subscribe(64)
	x1, r1 := do(t, a, target(up.port), autoRelease)
	if r1.err != nil || r1.status != 200 || r1.body != "ok" {
		t.Fatalf("first request: %+v", r1)
	}
	if ev := recv(t, x1.socketCh, "socket"); ev.reused {
		t.Fatal("first request got Reused() = true")
	}
	waitEvent(t, sub, isType(agentpool.EventSocketFreed))
	x2, r2 := do(t, a, target(up.port), autoRelease)
	if r2.err != nil {
		t.Fatalf("second request: %v", r2.err)
	}
	if ev := recv(t, x2.socketCh, "socket"); !ev.reused || !r2.reused {
		t.Fatal("second request got Reused() = false")
	}
	if r1.port != r2.port || up.accepts() != 1 {
		t.Fatalf("ports %d, %d and %d accepts: socket not reused", r1.port, r2.port, up.accepts())
	}
	waitEvent(t, sub, isType(agentpool.EventSocketFreed))
	ns := snapshotName(a, a.GetName(target(up.port)))
	if len(ns.FreeSockets) != 1 || len(ns.Sockets) != 0 {
		t.Fatalf("snapshot %+v, want one free socket", ns)
	}
	info := ns.FreeSockets[0]
	if info.RequestsServed != 2 || info.State != agentpool.StateFree || !info.KeepAlive || info.KeepAliveDelay != time.Second ||
		info.Family != 4 || info.RemotePort != up.port || info.LocalPort != r1.port || info.RemoteAddress != "127.0.0.1" ||
		info.BytesWritten == 0 || info.BytesRead == 0 || !info.NoDelay {
		t.Fatalf("socket info %+v", info)
	}
}

func TestKeepAliveFalseDestroysAfterUse(t *testing.T) {
	testutil.CheckLeaks(t)
	up := startHTTP(t, okHandler())
	a := newAgent(t, agentpool.DefaultOptions(), agentpool.Deps{})
	sub := a.Subscribe(64)
	if _, r := do(t, a, target(up.port), autoRelease); r.err != nil {
		t.Fatal(r.err)
	}
	e := waitEvent(t, sub, isType(agentpool.EventSocketClosed))
	if e.Reason != "agent keepAlive is false" {
		t.Fatalf("close reason %q", e.Reason)
	}
	if s := a.Snapshot(); s.TotalSockets != 0 {
		t.Fatalf("total sockets %d", s.TotalSockets)
	}
}

func TestScheduling(t *testing.T) {
	tests := []struct {
		name      string
		sched     agentpool.Scheduling
		wantIndex int // which of the released sockets (in release order) the next request gets
	}{
		{name: "lifo picks the most recently used", sched: agentpool.LIFO, wantIndex: 2},
		{name: "fifo picks the least recently used", sched: agentpool.FIFO, wantIndex: 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			testutil.CheckLeaks(t)
			up := startHTTP(t, okHandler())
			o := keepAliveOptions()
			o.Scheduling = tt.sched
			a := newAgent(t, o, agentpool.Deps{})
			var xs []*exchange
			var ports []int
			for i := 0; i < 3; i++ {
				x := newExchange("/", hold)
				a.Acquire(target(up.port), x)
				xs = append(xs, x)
			}
			for _, x := range xs {
				r := recv(t, x.resultCh, "result")
				if r.err != nil {
					t.Fatal(r.err)
				}
				ports = append(ports, r.port)
			}
			for _, x := range xs {
				x.socket().Release(true, 0)
			}
			_, r := do(t, a, target(up.port), autoRelease)
			if !r.reused || r.port != ports[tt.wantIndex] {
				t.Fatalf("got port %d (reused %v); released in order %v, want %d", r.port, r.reused, ports, ports[tt.wantIndex])
			}
		})
	}
}

// TestLimitsUnderLoad sends 100 concurrent wants and replays the event feed
// (published under the pool lock, so in state order) to check that no cap
// is ever exceeded, that each name's queue is served in order and that no
// want is lost.
func TestLimitsUnderLoad(t *testing.T) {
	tests := []struct {
		name       string
		names      int
		maxSockets int
		maxTotal   int
		maxFree    int
	}{
		{name: "maxSockets", names: 1, maxSockets: 5},
		{name: "maxTotalSockets", names: 3, maxTotal: 6},
		{name: "both", names: 3, maxSockets: 3, maxTotal: 5},
		{name: "maxFreeSockets", names: 2, maxSockets: 8, maxFree: 2},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			testutil.CheckLeaks(t)
			gate := make(chan struct{})
			var ups []*upstream
			for i := 0; i < tt.names; i++ {
				ups = append(ups, startHTTP(t, gatedHandler(gate)))
			}
			o := keepAliveOptions()
			o.MaxSockets, o.MaxTotalSockets, o.MaxFreeSockets = tt.maxSockets, tt.maxTotal, tt.maxFree
			a := newAgent(t, o, agentpool.Deps{})
			sub := a.Subscribe(10000)
			const n = 100
			xs := make([]*exchange, n)
			for i := range xs {
				xs[i] = newExchange("/", autoRelease)
				a.Acquire(target(ups[i%tt.names].port), xs[i])
			}
			snap := a.Snapshot()
			queued, total := 0, 0
			for _, ns := range snap.Names {
				queued += ns.Requests
				total += len(ns.Sockets) + len(ns.FreeSockets)
			}
			if queued+total != n || total != snap.TotalSockets {
				t.Fatalf("after 100 wants: %d queued + %d sockets (total %d)", queued, total, snap.TotalSockets)
			}
			close(gate)
			for i, x := range xs {
				if r := recv(t, x.resultCh, fmt.Sprintf("result %d", i)); r.err != nil || r.body != "ok" {
					t.Fatalf("want %d: %+v", i, r)
				}
			}
			// Every socket is free or closed now; wait for the pool to settle.
			if !pollUntil(waitLimit, func() bool {
				s := a.Snapshot()
				free := 0
				for _, ns := range s.Names {
					free += len(ns.FreeSockets)
					if len(ns.Sockets) != 0 || ns.Requests != 0 {
						return false
					}
				}
				return free == s.TotalSockets
			}) {
				t.Fatalf("pool did not settle: %+v", a.Snapshot())
			}
			if tt.maxFree > 0 {
				for _, ns := range a.Snapshot().Names {
					if len(ns.FreeSockets) > tt.maxFree {
						t.Fatalf("%s has %d free sockets, max %d", ns.Name, len(ns.FreeSockets), tt.maxFree)
					}
				}
			}
			sub.Close()
			if d := sub.Dropped(); d != 0 {
				t.Fatalf("dropped %d events", d)
			}
			live := map[string]int{}
			liveTotal, maxSeen, assigned := 0, 0, 0
			lastDequeued := map[string]uint64{}
			for e := range sub.C() {
				switch e.Type {
				case agentpool.EventSocketCreated:
					live[e.Name]++
					liveTotal++
				case agentpool.EventSocketClosed, agentpool.EventSocketDetached:
					live[e.Name]--
					liveTotal--
				case agentpool.EventSocketAssigned:
					assigned++
				case agentpool.EventRequestDequeued:
					if e.RequestID <= lastDequeued[e.Name] {
						t.Fatalf("%s: request %d dequeued after %d", e.Name, e.RequestID, lastDequeued[e.Name])
					}
					lastDequeued[e.Name] = e.RequestID
				}
				if tt.maxSockets > 0 && live[e.Name] > tt.maxSockets {
					t.Fatalf("%s has %d sockets, max %d", e.Name, live[e.Name], tt.maxSockets)
				}
				if tt.maxTotal > 0 && liveTotal > tt.maxTotal {
					t.Fatalf("%d sockets in total, max %d", liveTotal, tt.maxTotal)
				}
				maxSeen = max(maxSeen, liveTotal)
			}
			if assigned != n {
				t.Fatalf("%d assignments, want %d", assigned, n)
			}
			t.Logf("peak sockets %d", maxSeen)
		})
	}
}

func TestMaxTotalSocketsEvictsOtherNamesFreeSocket(t *testing.T) {
	testutil.CheckLeaks(t)
	gate := make(chan struct{})
	upA := startHTTP(t, okHandler())
	upB := startHTTP(t, gatedHandler(gate))
	upC := startHTTP(t, okHandler())
	o := keepAliveOptions()
	o.MaxTotalSockets = 1
	a := newAgent(t, o, agentpool.Deps{})
	sub := a.Subscribe(256)

	// A's socket is free; B needs the only slot: A's free socket is closed.
	if _, r := do(t, a, target(upA.port), autoRelease); r.err != nil {
		t.Fatal(r.err)
	}
	xb := newExchange("/", autoRelease)
	a.Acquire(target(upB.port), xb)
	e := waitEvent(t, sub, isType(agentpool.EventSocketClosed))
	if e.Name != a.GetName(target(upA.port)) || e.Reason != "evicted for maxTotalSockets" {
		t.Fatalf("closed event %+v", e)
	}
	// C queues behind B's busy socket; when B's socket goes free, it is
	// evicted for C.
	xc := newExchange("/", autoRelease)
	a.Acquire(target(upC.port), xc)
	if ns := snapshotName(a, a.GetName(target(upC.port))); ns.Requests != 1 {
		t.Fatalf("C not queued: %+v", ns)
	}
	close(gate)
	if r := recv(t, xb.resultCh, "B"); r.err != nil {
		t.Fatal(r.err)
	}
	if r := recv(t, xc.resultCh, "C"); r.err != nil {
		t.Fatal(r.err)
	}
}

func TestCancelQueuedWant(t *testing.T) {
	testutil.CheckLeaks(t)
	gate := make(chan struct{})
	up := startHTTP(t, gatedHandler(gate))
	o := keepAliveOptions()
	o.MaxSockets = 1
	a := newAgent(t, o, agentpool.Deps{})
	x1, x2 := newExchange("/", autoRelease), newExchange("/", autoRelease)
	w1 := a.Acquire(target(up.port), x1)
	w2 := a.Acquire(target(up.port), x2)
	if !w2.Cancel() {
		t.Fatal("Cancel of a queued want = false")
	}
	if w2.Cancel() || w1.Cancel() {
		t.Fatal("second Cancel, or Cancel of an assigned want, = true")
	}
	close(gate)
	recv(t, x1.resultCh, "x1")
	select {
	case ev := <-x2.socketCh:
		t.Fatalf("cancelled want got OnSocket %+v", ev)
	default:
	}
	if ns := snapshotName(a, a.GetName(target(up.port))); ns.Requests != 0 {
		t.Fatalf("requests %d", ns.Requests)
	}
}

func TestFreeSocketRemovedWhenServerActs(t *testing.T) {
	tests := []struct {
		name   string
		action func(c io.Writer) // done by the server on the idle connection
		reason string
	}{
		{name: "server closes idle connection", reason: "closed by server"},
		{name: "unsolicited bytes", action: func(c io.Writer) { _, _ = io.WriteString(c, "HTTP/1.1 408 Request Timeout\r\n\r\n") }, reason: "unsolicited data on free socket"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			testutil.CheckLeaks(t)
			act := make(chan struct{})
			up := startHTTP(t, func(w *bufio.Writer, r request) bool {
				respond(w)
				_ = w.Flush()
				<-act
				if tt.action != nil {
					tt.action(r.Conn)
					// keep the connection until the client closes it
					_, _ = r.Conn.Read(make([]byte, 1))
				}
				return false
			})
			a := newAgent(t, keepAliveOptions(), agentpool.Deps{})
			sub := a.Subscribe(64)
			if _, r := do(t, a, target(up.port), autoRelease); r.err != nil {
				t.Fatal(r.err)
			}
			waitEvent(t, sub, isType(agentpool.EventSocketFreed))
			close(act)
			e := waitEvent(t, sub, isType(agentpool.EventSocketClosed))
			if e.Reason != tt.reason {
				t.Fatalf("close reason %q, want %q", e.Reason, tt.reason)
			}
			if s := a.Snapshot(); s.TotalSockets != 0 || len(s.Names) != 0 {
				t.Fatalf("snapshot %+v", s)
			}
		})
	}
}

func TestKeepAliveHint(t *testing.T) {
	tests := []struct {
		name        string
		header      string
		timeout     time.Duration
		buffer      time.Duration
		wantReason  string        // close reason at release, "" when kept
		wantTimeout time.Duration // free socket timeout when kept
	}{
		{name: "hint within the buffer: not kept", header: "Keep-Alive: timeout=1", timeout: 5 * time.Second, wantReason: "keep-alive hint too short"},
		{name: "hint shortens the agent timeout", header: "Keep-Alive: timeout=3", timeout: 5 * time.Second, buffer: 2800 * time.Millisecond, wantTimeout: 200 * time.Millisecond},
		{name: "hint longer than the agent timeout", header: "Keep-Alive: timeout=30", timeout: 150 * time.Millisecond, wantTimeout: 150 * time.Millisecond},
		{name: "no agent timeout: Node ignores the hint", header: "Keep-Alive: timeout=3", wantTimeout: 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			testutil.CheckLeaks(t)
			up := startHTTP(t, okHandler(tt.header))
			o := keepAliveOptions()
			o.Timeout, o.KeepAliveTimeoutBuffer = tt.timeout, tt.buffer
			a := newAgent(t, o, agentpool.Deps{})
			sub := a.Subscribe(64)
			if _, r := do(t, a, target(up.port), autoRelease); r.err != nil {
				t.Fatal(r.err)
			}
			e := waitEvent(t, sub, func(e agentpool.Event) bool {
				return e.Type == agentpool.EventSocketFreed || e.Type == agentpool.EventSocketClosed
			})
			if tt.wantReason != "" {
				if e.Type != agentpool.EventSocketClosed || e.Reason != tt.wantReason {
					t.Fatalf("event %v %q, want closed %q", e.Type, e.Reason, tt.wantReason)
				}
				return
			}
			if e.Type != agentpool.EventSocketFreed {
				t.Fatalf("socket closed (%q), want freed", e.Reason)
			}
			freedAt := e.Time
			if tt.wantTimeout == 0 {
				ns := snapshotName(a, a.GetName(target(up.port)))
				if len(ns.FreeSockets) != 1 || ns.FreeSockets[0].Timeout != 0 {
					t.Fatalf("free sockets %+v, want one without timeout", ns.FreeSockets)
				}
				return
			}
			waitEvent(t, sub, isType(agentpool.EventSocketTimedOut))
			c := waitEvent(t, sub, isType(agentpool.EventSocketClosed))
			if c.Reason != "timeout" {
				t.Fatalf("close reason %q", c.Reason)
			}
			if d := c.Time.Sub(freedAt); d < tt.wantTimeout || d > tt.wantTimeout+2*time.Second {
				t.Fatalf("free socket lived %v, want about %v", d, tt.wantTimeout)
			}
		})
	}
}

func TestIdleTimeoutOnActiveSocketOnlyNotifies(t *testing.T) {
	testutil.CheckLeaks(t)
	gate := make(chan struct{})
	up := startHTTP(t, gatedHandler(gate))
	o := keepAliveOptions()
	o.Timeout = 50 * time.Millisecond
	a := newAgent(t, o, agentpool.Deps{})
	x := newExchange("/", autoRelease)
	a.Acquire(target(up.port), x)
	recv(t, x.timeoutCh, "OnTimeout")
	close(gate)
	if r := recv(t, x.resultCh, "result"); r.err != nil || r.body != "ok" {
		t.Fatalf("result after timeout: %+v", r)
	}
}

// TestKeepAliveRace: the server closes a kept-alive connection just as the
// next request is sent. The exchange must see a read error on a socket
// whose Reused() is true, so the engine can apply its retry rule.
func TestKeepAliveRace(t *testing.T) {
	testutil.CheckLeaks(t)
	var mu sync.Mutex
	served := map[string]int{}
	up := startHTTP(t, func(w *bufio.Writer, r request) bool {
		mu.Lock()
		served[r.Conn.RemoteAddr().String()]++
		n := served[r.Conn.RemoteAddr().String()]
		mu.Unlock()
		if n > 1 {
			return false // read the request, close without answering
		}
		respond(w)
		return true
	})
	a := newAgent(t, keepAliveOptions(), agentpool.Deps{})
	sub := a.Subscribe(64)
	if _, r := do(t, a, target(up.port), autoRelease); r.err != nil {
		t.Fatal(r.err)
	}
	waitEvent(t, sub, isType(agentpool.EventSocketFreed))
	_, r := do(t, a, target(up.port), autoRelease)
	if r.err == nil || !r.reused {
		t.Fatalf("second request: err %v, reused %v; want a read error on a reused socket", r.err, r.reused)
	}
	if c := nodeerr.Code(r.err); c != nodeerr.ECONNRESET {
		t.Fatalf("error %v has code %q, want ECONNRESET", r.err, c)
	}
}

func TestDetach(t *testing.T) {
	t.Run("after the response, slot goes to the queue", func(t *testing.T) {
		testutil.CheckLeaks(t)
		up := startHTTP(t, okHandler())
		o := keepAliveOptions()
		o.MaxSockets = 1
		a := newAgent(t, o, agentpool.Deps{})
		x1 := newExchange("/", hold)
		a.Acquire(target(up.port), x1)
		r1 := recv(t, x1.resultCh, "x1")
		x2 := newExchange("/", autoRelease)
		a.Acquire(target(up.port), x2)
		conn, br := x1.socket().Detach()
		if conn == nil || br == nil {
			t.Fatal("Detach returned nil")
		}
		defer conn.Close()
		r2 := recv(t, x2.resultCh, "x2")
		if r2.err != nil || r2.reused || r2.port == r1.port {
			t.Fatalf("queued want after detach: %+v (detached port %d)", r2, r1.port)
		}
		// The detached connection is still open and ours.
		fmt.Fprintf(conn, "GET / HTTP/1.1\r\nHost: t\r\n\r\n")
		if _, _, body, err := readResponse(br); err != nil || body != "ok" {
			t.Fatalf("detached conn: %q, %v", body, err)
		}
		if conn2, _ := x1.socket().Detach(); conn2 != nil {
			t.Fatal("second Detach returned a conn")
		}
	})
	t.Run("while the pool's reader waits", func(t *testing.T) {
		testutil.CheckLeaks(t)
		up := startHTTP(t, okHandler())
		a := newAgent(t, keepAliveOptions(), agentpool.Deps{})
		sub := a.Subscribe(64)
		do(t, a, target(up.port), autoRelease)
		waitEvent(t, sub, isType(agentpool.EventSocketFreed))
		x := newExchange("/", noRead)
		a.Acquire(target(up.port), x)
		if err := recv(t, x.connectCh, "connect"); err != nil {
			t.Fatal(err)
		}
		conn, br := x.socket().Detach()
		defer conn.Close()
		fmt.Fprintf(conn, "GET / HTTP/1.1\r\nHost: t\r\n\r\n")
		if _, _, body, err := readResponse(br); err != nil || body != "ok" {
			t.Fatalf("detached conn: %q, %v", body, err)
		}
		select {
		case <-x.readCalls:
			t.Fatal("ReadResponse called after Detach")
		default:
		}
		if s := a.Snapshot(); s.TotalSockets != 0 {
			t.Fatalf("detached socket still counted: %+v", s)
		}
	})
}

func TestAgentDestroy(t *testing.T) {
	testutil.CheckLeaks(t)
	gate := make(chan struct{})
	defer close(gate)
	upFree := startHTTP(t, okHandler())
	upBusy := startHTTP(t, gatedHandler(gate))
	resolver := fakeResolver{answers: map[string][]netip.Addr{"slow.test": nil}}
	o := keepAliveOptions()
	o.MaxSockets = 2
	a, err := agentpool.New("d", o, agentpool.Deps{Resolver: resolver})
	if err != nil {
		t.Fatal(err)
	}
	sub := a.Subscribe(1024)
	do(t, a, target(upFree.port), autoRelease)
	waitEvent(t, sub, isType(agentpool.EventSocketFreed))
	var busy, queued []*exchange
	for i := 0; i < 5; i++ {
		x := newExchange("/", autoRelease)
		a.Acquire(target(upBusy.port), x)
		if i < 2 {
			busy = append(busy, x)
		} else {
			queued = append(queued, x)
		}
	}
	for _, x := range busy {
		if err := recv(t, x.connectCh, "connect"); err != nil {
			t.Fatal(err)
		}
	}
	connecting := newExchange("/", autoRelease)
	a.Acquire(agentpool.Target{Protocol: "http:", Host: "slow.test", Port: 80}, connecting)
	recv(t, connecting.socketCh, "socket")

	a.Destroy()
	for _, x := range queued {
		if ev := recv(t, x.socketCh, "socket"); ev.s != nil || nodeerr.Code(ev.err) != nodeerr.ERR_GATEWAY_AGENT_DESTROYED {
			t.Fatalf("queued want: %+v", ev)
		}
	}
	for _, x := range busy {
		if r := recv(t, x.resultCh, "busy result"); r.err == nil {
			t.Fatal("in-use socket kept working after Destroy")
		}
	}
	if err := recv(t, connecting.connectCh, "connecting"); nodeerr.Code(err) != nodeerr.ERR_GATEWAY_AGENT_DESTROYED {
		t.Fatalf("connecting socket: %v", err)
	}
	late := newExchange("/", autoRelease)
	a.Acquire(target(upFree.port), late)
	if ev := recv(t, late.socketCh, "late"); nodeerr.Code(ev.err) != nodeerr.ERR_GATEWAY_AGENT_DESTROYED {
		t.Fatalf("Acquire after Destroy: %+v", ev)
	}
	if s := a.Snapshot(); !s.Destroyed || s.TotalSockets != 0 || len(s.Names) != 0 {
		t.Fatalf("snapshot after Destroy: %+v", s)
	}
	for range sub.C() {
	}
}

func TestSlowSubscriberNeverStallsThePool(t *testing.T) {
	testutil.CheckLeaks(t)
	up := startHTTP(t, okHandler())
	a := newAgent(t, keepAliveOptions(), agentpool.Deps{})
	sub := a.Subscribe(1) // never read
	defer sub.Close()
	for i := 0; i < 5; i++ {
		if _, r := do(t, a, target(up.port), autoRelease); r.err != nil {
			t.Fatal(r.err)
		}
	}
	if sub.Dropped() == 0 {
		t.Fatal("no events dropped for a full subscriber")
	}
}
