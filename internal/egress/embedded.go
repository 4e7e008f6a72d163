package egress

import "net/netip"

// view is one address a destination stands for: the address dialed itself,
// or an IPv4 address embedded in it that a translator or tunnel on the path
// would deliver to.
type view struct {
	addr netip.Addr
	// via names the embedding ("nat64 64:ff9b::/96"); empty for the address
	// dialed.
	via string
}

var (
	nat64WellKnown = netip.MustParsePrefix("64:ff9b::/96")    // RFC 6052
	nat64Local     = netip.MustParsePrefix("64:ff9b:1::/48")  // RFC 8215
	sixToFour      = netip.MustParsePrefix("2002::/16")       // RFC 3056
	teredo         = netip.MustParsePrefix("2001::/32")       // RFC 4380
	ipv4Compatible = netip.MustParsePrefix("::/96")           // RFC 4291, deprecated
	ipv4Translated = netip.MustParsePrefix("::ffff:0:0:0/96") // RFC 2765 (SIIT)
)

// canonical is the form every check works on: IPv4-mapped IPv6
// (::ffff:a.b.c.d) is the IPv4 address it maps, and zones are dropped
// (a zone picks an interface, not a different address).
func canonical(a netip.Addr) netip.Addr {
	return a.Unmap().WithZone("")
}

// views returns a (canonical) followed by every IPv4 address embedded in it.
// Deny rules, self listeners and default-deny ranges apply to each view, so
// that 64:ff9b::a9fe:a9fe is denied as 169.254.169.254 and 2002:7f00:1::1 as
// 127.0.0.1.
//
// Teredo yields both the server and the (obfuscated) client address. Forms
// that depend on local configuration (6rd prefixes, ISATAP interface ids,
// operator NAT64 prefixes other than the two well-known ones) cannot be
// recognised; deny those prefixes explicitly if the network has them.
func views(a netip.Addr) []view {
	vs := []view{{addr: a}}
	if !a.Is6() {
		return vs
	}
	b := a.As16()
	v4 := func(p0, p1, p2, p3 byte) netip.Addr { return netip.AddrFrom4([4]byte{p0, p1, p2, p3}) }
	switch {
	case nat64WellKnown.Contains(a):
		vs = append(vs, view{v4(b[12], b[13], b[14], b[15]), "nat64 " + nat64WellKnown.String()})
	case nat64Local.Contains(a):
		// RFC 6052 section 2.2, /48: the IPv4 address sits in bits 48-63 and
		// 72-87, around the reserved "u" octet.
		vs = append(vs, view{v4(b[6], b[7], b[9], b[10]), "nat64 " + nat64Local.String()})
	case sixToFour.Contains(a):
		vs = append(vs, view{v4(b[2], b[3], b[4], b[5]), "6to4 " + sixToFour.String()})
	case teredo.Contains(a):
		vs = append(vs,
			view{v4(b[4], b[5], b[6], b[7]), "teredo-server " + teredo.String()},
			view{v4(^b[12], ^b[13], ^b[14], ^b[15]), "teredo-client " + teredo.String()})
	case ipv4Translated.Contains(a):
		vs = append(vs, view{v4(b[12], b[13], b[14], b[15]), "ipv4-translated " + ipv4Translated.String()})
	case ipv4Compatible.Contains(a) && !a.IsUnspecified() && !a.IsLoopback():
		vs = append(vs, view{v4(b[12], b[13], b[14], b[15]), "ipv4-compatible " + ipv4Compatible.String()})
	}
	return vs
}
