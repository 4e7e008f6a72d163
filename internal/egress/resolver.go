package egress

import (
	"context"
	"net"
	"net/netip"
)

// NetIPResolver is what Resolver delegates to; *net.Resolver and
// agentpool.Resolver have this method.
type NetIPResolver interface {
	LookupNetIP(ctx context.Context, network, host string) ([]netip.Addr, error)
}

// Resolver is an agentpool.Resolver that resolves hosts the way the policy
// sees them: numeric hosts ("127.1", "2130706433", "0x7f000001",
// "0177.0.0.1", see NormalizeHost) are the address a libc client would
// connect to, without a lookup; names are looked up normalised (lower case,
// IDN as punycode; an absolute name keeps its trailing dot so that search
// domains are not appended). Hosts that NormalizeHost refuses fail as "not
// found". The zero Resolver delegates to net.DefaultResolver.
//
// Resolver does not check anything: the agent pool checks each address it
// returns (Deps.Check) before dialing exactly that address.
type Resolver struct {
	// Next resolves names; nil means net.DefaultResolver.
	Next NetIPResolver
}

// NewResolver returns a Resolver delegating names to next (nil:
// net.DefaultResolver).
func NewResolver(next NetIPResolver) *Resolver {
	return &Resolver{Next: next}
}

// LookupNetIP resolves host for network "ip", "ip4" or "ip6".
func (r *Resolver) LookupNetIP(ctx context.Context, network, host string) ([]netip.Addr, error) {
	_, ip, isIP, err := NormalizeHost(host)
	if err != nil {
		return nil, &net.DNSError{Err: err.Error(), Name: host, IsNotFound: true}
	}
	if isIP {
		u := ip.Unmap()
		if (network == "ip4" && !u.Is4()) || (network == "ip6" && u.Is4()) {
			return nil, &net.DNSError{Err: "no suitable address", Name: host, IsNotFound: true}
		}
		return []netip.Addr{ip}, nil
	}
	name, absolute, err := normalizeName(host)
	if err != nil { // NormalizeHost accepted it, so this cannot happen
		return nil, &net.DNSError{Err: err.Error(), Name: host, IsNotFound: true}
	}
	if absolute {
		name += "."
	}
	next := r.Next
	if next == nil {
		next = net.DefaultResolver
	}
	return next.LookupNetIP(ctx, network, name)
}
