package egress_test

import (
	"context"
	"net"
	"net/netip"
	"sync"
	"testing"

	"github.com/httpgateway/httpgateway/internal/egress"
)

// fakeResolver answers from a script and never touches the network: the
// i-th lookup of a name gets answers[name][i], the last entry repeating.
// Unknown names are "not found".
type fakeResolver struct {
	answers map[string][][]string

	mu     sync.Mutex
	calls  map[string]int
	looked []string // names asked for, in order
}

func newFakeResolver(answers map[string][][]string) *fakeResolver {
	return &fakeResolver{answers: answers, calls: map[string]int{}}
}

func (f *fakeResolver) LookupNetIP(_ context.Context, _, host string) ([]netip.Addr, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.looked = append(f.looked, host)
	script, ok := f.answers[host]
	if !ok || len(script) == 0 {
		return nil, &net.DNSError{Err: "no such host", Name: host, IsNotFound: true}
	}
	i := min(f.calls[host], len(script)-1)
	f.calls[host]++
	var out []netip.Addr
	for _, s := range script[i] {
		out = append(out, netip.MustParseAddr(s))
	}
	return out, nil
}

func (f *fakeResolver) lookedUp() []string {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]string(nil), f.looked...)
}

func mustPolicy(t *testing.T, opts egress.Options) *egress.Policy {
	t.Helper()
	p, err := egress.New(opts)
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	return p
}

// dialDecision does what the agent pool does for one dial of host:port,
// without dialing: an IP literal is used as is, anything else goes through
// res; each address is decided (and checked, which must agree) in order.
// It returns the decision for the first denied address, else for the
// first address.
func dialDecision(t *testing.T, p *egress.Policy, res *egress.Resolver, host string, port uint16) egress.Decision {
	t.Helper()
	var addrs []netip.Addr
	if a, err := netip.ParseAddr(host); err == nil {
		addrs = []netip.Addr{a}
	} else {
		addrs, err = res.LookupNetIP(context.Background(), "ip", host)
		if err != nil {
			t.Fatalf("lookup %q: %v", host, err)
		}
	}
	var first *egress.Decision
	for _, a := range addrs {
		ap := netip.AddrPortFrom(a, port)
		d := p.Decide(host, ap)
		err := p.Check(context.Background(), host, ap)
		if (err == nil) != !d.Enforced() {
			t.Fatalf("Check(%q, %s) = %v, but Decide says %+v", host, ap, err, d)
		}
		if !d.Allowed {
			return d
		}
		if first == nil {
			first = &d
		}
	}
	return *first
}
