package egress

import "net/netip"

// Range is a named address range of the default policy.
type Range struct {
	// Name says what the range is ("loopback", "link-local", "private", ...);
	// it appears in the rule of a decision: "default-deny:loopback 127.0.0.0/8".
	Name string
	// Prefix is the range.
	Prefix netip.Prefix
}

func (r Range) String() string { return r.Name + " " + r.Prefix.String() }

// defaultDeny is what is denied unless an address allow rule opens it.
// Where ranges overlap the more specific comes first, so that its name is
// the one reported (255.255.255.255 is "broadcast", not "reserved").
//
// The IPv6 ranges that embed an IPv4 address (64:ff9b::/96 NAT64, 2002::/16
// 6to4, 2001::/32 Teredo) are not listed: they are denied only when the
// embedded address is (see embedded.go). ::ffff:0:0/96 never reaches the
// table because addresses are unmapped first; it is listed so that the table
// is complete if that ever changes.
var defaultDeny = []Range{
	// IPv4, RFC 6890 and the IANA special-purpose registry.
	{"this-network", netip.MustParsePrefix("0.0.0.0/8")},
	{"private", netip.MustParsePrefix("10.0.0.0/8")},
	{"cgnat", netip.MustParsePrefix("100.64.0.0/10")}, // also Alibaba's metadata 100.100.100.200
	{"loopback", netip.MustParsePrefix("127.0.0.0/8")},
	{"azure-wireserver", netip.MustParsePrefix("168.63.129.16/32")}, // public space, but a metadata endpoint inside Azure
	{"link-local", netip.MustParsePrefix("169.254.0.0/16")},         // cloud metadata 169.254.169.254
	{"private", netip.MustParsePrefix("172.16.0.0/12")},
	{"ietf-protocol-assignments", netip.MustParsePrefix("192.0.0.0/24")},
	{"documentation", netip.MustParsePrefix("192.0.2.0/24")},
	{"6to4-relay-anycast", netip.MustParsePrefix("192.88.99.0/24")},
	{"private", netip.MustParsePrefix("192.168.0.0/16")},
	{"benchmarking", netip.MustParsePrefix("198.18.0.0/15")},
	{"documentation", netip.MustParsePrefix("198.51.100.0/24")},
	{"documentation", netip.MustParsePrefix("203.0.113.0/24")},
	{"multicast", netip.MustParsePrefix("224.0.0.0/4")},
	{"broadcast", netip.MustParsePrefix("255.255.255.255/32")},
	{"reserved", netip.MustParsePrefix("240.0.0.0/4")},

	// IPv6.
	{"unspecified", netip.MustParsePrefix("::/128")},
	{"loopback", netip.MustParsePrefix("::1/128")},
	{"ipv4-compatible", netip.MustParsePrefix("::/96")}, // deprecated ::a.b.c.d
	{"ipv4-mapped", netip.MustParsePrefix("::ffff:0:0/96")},
	{"ipv4-translated", netip.MustParsePrefix("::ffff:0:0:0/96")}, // SIIT
	{"nat64-local", netip.MustParsePrefix("64:ff9b:1::/48")},      // RFC 8215, local use only
	{"discard", netip.MustParsePrefix("100::/64")},
	{"benchmarking", netip.MustParsePrefix("2001:2::/48")},
	{"orchid", netip.MustParsePrefix("2001:10::/28")},
	{"orchid", netip.MustParsePrefix("2001:20::/28")},
	{"documentation", netip.MustParsePrefix("2001:db8::/32")},
	{"documentation", netip.MustParsePrefix("3fff::/20")},
	{"srv6-sid", netip.MustParsePrefix("5f00::/16")},
	{"unique-local", netip.MustParsePrefix("fc00::/7")}, // also AWS's IPv6 metadata fd00:ec2::254
	{"link-local", netip.MustParsePrefix("fe80::/10")},
	{"site-local", netip.MustParsePrefix("fec0::/10")},
	{"multicast", netip.MustParsePrefix("ff00::/8")},
}

// DefaultDenyRanges returns the ranges the default policy denies, in the
// order they are matched. The caller may modify the returned slice.
func DefaultDenyRanges() []Range {
	return append([]Range(nil), defaultDeny...)
}

// defaultDenied returns the first default-deny range holding a, which must
// be unmapped and without a zone.
func defaultDenied(a netip.Addr) (Range, bool) {
	for _, r := range defaultDeny {
		if r.Prefix.Contains(a) {
			return r, true
		}
	}
	return Range{}, false
}
