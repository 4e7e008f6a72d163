package agentpool_test

import (
	"net"
	"net/netip"
	"path/filepath"
	"testing"
	"time"

	"github.com/httpgateway/httpgateway/internal/agentpool"
	"github.com/httpgateway/httpgateway/internal/testutil"
)

// TestDialTimings: a socket records when each phase of its dial ran (DNS
// only for a name, TLS only for https), in order, between its creation
// and its first use; SocketInfo.Dial is nil while connecting, and a
// reused socket keeps the timings of its one dial.
func TestDialTimings(t *testing.T) {
	pki := newPKI(t)
	tests := []struct {
		name             string
		up               func(t *testing.T) agentpool.Target // starts the upstream
		deps             agentpool.Deps
		wantDNS, wantTLS bool
	}{
		{name: "IP literal, http", up: func(t *testing.T) agentpool.Target {
			return target(startHTTP(t, okHandler()).port)
		}},
		{name: "name, https", wantDNS: true, wantTLS: true,
			deps: agentpool.Deps{Resolver: fakeResolver{answers: map[string][]netip.Addr{"svc.test": {netip.MustParseAddr("127.0.0.1")}}}},
			up: func(t *testing.T) agentpool.Target {
				return agentpool.Target{Protocol: "https:", Host: "svc.test", Port: startTLS(t, pki.good).port,
					TLS: &agentpool.TLSOptions{CA: pki.caPEM, ServerName: "127.0.0.1"}}
			}},
		{name: "unix socket", up: func(t *testing.T) agentpool.Target {
			path := filepath.Join(t.TempDir(), "up.sock")
			ln, err := net.Listen("unix", path)
			if err != nil {
				t.Fatal(err)
			}
			startUpstream(t, ln, okHandler())
			return agentpool.Target{Protocol: "http:", Host: "localhost", SocketPath: path}
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			testutil.CheckLeaks(t)
			tg := tt.up(t)
			a := newAgent(t, keepAliveOptions(), tt.deps)
			sub := a.Subscribe(64)
			x := newExchange("/", autoRelease)
			var atAssign *agentpool.DialTimings
			assigned := false
			x.onSocket = func(s *agentpool.Socket) { atAssign, assigned = s.Info().Dial, true }
			a.Acquire(tg, x)
			if r := recv(t, x.resultCh, "result"); r.err != nil {
				t.Fatal(r.err)
			}
			if !assigned || atAssign != nil {
				t.Fatalf("Dial at assignment %+v, want nil while connecting", atAssign)
			}
			info := x.socket().Info()
			d := info.Dial
			if d == nil {
				t.Fatal("no dial timings once connected")
			}
			if got := !d.DNSStart.IsZero() && !d.DNSDone.IsZero(); got != tt.wantDNS {
				t.Errorf("DNS phase %v – %v, want one: %v", d.DNSStart, d.DNSDone, tt.wantDNS)
			}
			if got := !d.TLSStart.IsZero() && !d.TLSDone.IsZero(); got != tt.wantTLS {
				t.Errorf("TLS phase %v – %v, want one: %v", d.TLSStart, d.TLSDone, tt.wantTLS)
			}
			if d.ConnectStart.IsZero() || d.ConnectDone.IsZero() {
				t.Errorf("connect phase %v – %v", d.ConnectStart, d.ConnectDone)
			}
			// In order, from the socket's creation to now.
			moments := []time.Time{info.Created}
			for _, m := range []time.Time{d.DNSStart, d.DNSDone, d.ConnectStart, d.ConnectDone, d.TLSStart, d.TLSDone} {
				if !m.IsZero() {
					moments = append(moments, m)
				}
			}
			moments = append(moments, time.Now())
			for i := 1; i < len(moments); i++ {
				if moments[i].Before(moments[i-1]) {
					t.Errorf("moment %d (%v) before moment %d (%v): %+v", i, moments[i], i-1, moments[i-1], d)
				}
			}

			waitEvent(t, sub, isType(agentpool.EventSocketFreed))
			x2, r := do(t, a, tg, autoRelease)
			if r.err != nil || !r.reused {
				t.Fatalf("second request %+v", r)
			}
			if got := x2.socket().Info().Dial; got != d {
				t.Errorf("reused socket's timings %+v, want the dial's %+v", got, d)
			}
		})
	}
}
