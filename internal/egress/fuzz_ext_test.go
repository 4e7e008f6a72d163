package egress_test

import (
	"net/netip"
	"testing"

	"github.com/httpgateway/httpgateway/internal/egress"
)

// FuzzNormalizeHost: no input panics; whatever address a host normalises
// to, the default policy denies it if it is loopback, whether checked by
// the host's spelling or by the address's; a normalised name is a fixed
// point.
func FuzzNormalizeHost(f *testing.F) {
	p, err := egress.New(egress.Options{})
	if err != nil {
		f.Fatal(err)
	}
	f.Fuzz(func(t *testing.T, host string) {
		name, ip, isIP, err := egress.NormalizeHost(host)
		if err != nil {
			return
		}
		if !isIP {
			if ip.IsValid() {
				t.Fatalf("NormalizeHost(%q): name %q with address %v", host, name, ip)
			}
			again, _, isIP2, err := egress.NormalizeHost(name)
			if err != nil || again != name || isIP2 {
				t.Fatalf("NormalizeHost(%q) = %q, but NormalizeHost(%q) = %q, %t, %v", host, name, name, again, isIP2, err)
			}
			return
		}
		if !ip.IsValid() {
			t.Fatalf("NormalizeHost(%q): isIP without an address", host)
		}
		ap := netip.AddrPortFrom(ip, 80)
		if ip.Unmap().IsLoopback() {
			for _, h := range []string{host, name} {
				if d := p.Decide(h, ap); d.Allowed {
					t.Fatalf("loopback %v (from %q) allowed by %q", ip, h, d.Rule)
				}
			}
		}
		d1, d2 := p.Decide(host, ap), p.Decide(ip.String(), ap)
		if d1.Allowed != d2.Allowed {
			t.Fatalf("%q and %v decided differently: %+v vs %+v", host, ip, d1, d2)
		}
	})
}
