package egress

import (
	"errors"
	"fmt"
	"net/netip"
	"strings"

	"golang.org/x/net/idna"
)

// NormalizeHost turns a requested host into the form the policy matches and
// the resolver looks up, so that every spelling of one destination is
// treated as that destination:
//
//   - An IP literal, bracketed or not ("[::ffff:127.0.0.1]", "::1"), is that
//     address (isIP true).
//   - A name whose last label is a number is parsed the way inet_aton(3) and
//     the WHATWG URL host parser do: one to four parts, each decimal, octal
//     (leading 0) or hex (leading 0x), the last part filling the remaining
//     bytes. So "127.1", "2130706433", "0x7f000001" and "0177.0.0.1" are all
//     127.0.0.1 (isIP true), as a libc-based client would connect to them.
//     A name that ends in a number but is no such address ("1.2.3.4.5",
//     "08.0.0.1", "4294967296") is an error, as in the URL standard: it is
//     neither an address nor a host name.
//   - Any other name is mapped with IDNA's lookup profile (UTS #46: case
//     folded, full-width forms and ideographic full stops mapped, Unicode
//     labels to punycode) and loses its trailing dots: "WWW.Example.COM."
//     and "ｗｗｗ．example。com" are both "www.example.com". The IPv4 parse
//     above is applied to the mapped name too, so full-width digits do not
//     hide an address.
//   - A name with a character the URL standard forbids in a domain
//     (controls, space, "#%/:<>?@[\]^|") is an error.
//
// An ASCII name is only lower-cased: names IDNA's strict rules would refuse
// but resolvers accept (underscores, "--" in the third position) keep
// working. A non-ASCII name IDNA refuses is an error.
func NormalizeHost(host string) (name string, ip netip.Addr, isIP bool, err error) {
	h := host
	if len(h) >= 2 && h[0] == '[' && h[len(h)-1] == ']' {
		a, err := netip.ParseAddr(h[1 : len(h)-1])
		if err != nil || !a.Is6() {
			return "", netip.Addr{}, false, fmt.Errorf("host %q: invalid IPv6 literal", host)
		}
		return a.String(), a, true, nil
	}
	if a, err := netip.ParseAddr(h); err == nil {
		return a.String(), a, true, nil
	}
	n, _, err := normalizeName(h)
	if err != nil {
		return "", netip.Addr{}, false, err
	}
	if a, ok, err := parseIPv4Number(n); err != nil {
		return "", netip.Addr{}, false, fmt.Errorf("host %q: %w", host, err)
	} else if ok {
		return a.String(), a, true, nil
	}
	return n, netip.Addr{}, false, nil
}

// normalizeName maps a host name as NormalizeHost describes. absolute
// reports whether it ended in a dot (a fully qualified name that the
// resolver must not extend with search domains).
func normalizeName(h string) (name string, absolute bool, err error) {
	if h == "" {
		return "", false, errors.New("empty host")
	}
	if isASCII(h) {
		name = strings.ToLower(h)
	} else {
		name, err = idna.Lookup.ToASCII(h)
		if err != nil {
			return "", false, fmt.Errorf("host %q: %w", h, err)
		}
		name = strings.ToLower(name)
	}
	absolute = strings.HasSuffix(name, ".")
	name = strings.TrimRight(name, ".")
	if name == "" {
		return "", false, fmt.Errorf("host %q: no name", h)
	}
	if i := strings.IndexFunc(name, forbiddenHostRune); i >= 0 {
		return "", false, fmt.Errorf("host %q: forbidden character %q", h, name[i])
	}
	return name, absolute, nil
}

// forbiddenHostRune reports the URL standard's forbidden domain code points
// (controls, space, and "#%/:<>?@[\]^|"). Refusing them keeps a name such as
// "evil.internal.example\x00" from passing a deny rule for
// "*.internal.example" and then reaching a C resolver, which would stop
// reading at the NUL, or inet_aton, which stops at the space in
// "127.0.0.1 x".
func forbiddenHostRune(r rune) bool {
	return r <= ' ' || r == 0x7f || strings.ContainsRune("#%/:<>?@[\\]^|", r)
}

func isASCII(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] >= 0x80 {
			return false
		}
	}
	return true
}

// parseIPv4Number is the WHATWG URL "IPv4 parser" (which accepts what
// inet_aton accepts, and "0x" as zero). ok is false when the last label is
// not a number, i.e. the host is a name. s has no trailing dot.
func parseIPv4Number(s string) (a netip.Addr, ok bool, err error) {
	parts := strings.Split(s, ".")
	if !isNumberLabel(parts[len(parts)-1]) {
		return netip.Addr{}, false, nil
	}
	if len(parts) > 4 {
		return netip.Addr{}, false, errors.New("ends in a number but has more than four parts")
	}
	nums := make([]uint64, len(parts))
	for i, p := range parts {
		n, err := parseIPv4Part(p)
		if err != nil {
			return netip.Addr{}, false, err
		}
		nums[i] = n
	}
	last := len(nums) - 1
	for _, n := range nums[:last] {
		if n > 0xff {
			return netip.Addr{}, false, errors.New("IPv4 part out of range")
		}
	}
	if nums[last] >= 1<<(8*(5-len(nums))) {
		return netip.Addr{}, false, errors.New("IPv4 address out of range")
	}
	v := nums[last]
	for i, n := range nums[:last] {
		v |= n << (8 * (3 - i))
	}
	return netip.AddrFrom4([4]byte{byte(v >> 24), byte(v >> 16), byte(v >> 8), byte(v)}), true, nil
}

// isNumberLabel reports whether a label would be parsed as a number: all
// decimal digits, or 0x followed by hex digits (possibly none).
func isNumberLabel(l string) bool {
	if l == "" {
		return false
	}
	if len(l) >= 2 && l[0] == '0' && (l[1] == 'x' || l[1] == 'X') {
		for i := 2; i < len(l); i++ {
			if !isHex(l[i]) {
				return false
			}
		}
		return true
	}
	for i := 0; i < len(l); i++ {
		if l[i] < '0' || l[i] > '9' {
			return false
		}
	}
	return true
}

func isHex(c byte) bool {
	return c >= '0' && c <= '9' || c >= 'a' && c <= 'f' || c >= 'A' && c <= 'F'
}

// parseIPv4Part parses one part: 0x-prefixed hex, 0-prefixed octal, else
// decimal. Values past 32 bits are an error (checked as digits accumulate,
// so long inputs cannot overflow).
func parseIPv4Part(p string) (uint64, error) {
	if p == "" {
		return 0, errors.New("empty IPv4 part")
	}
	base, digits := uint64(10), p
	switch {
	case len(p) >= 2 && p[0] == '0' && (p[1] == 'x' || p[1] == 'X'):
		base, digits = 16, p[2:]
	case len(p) >= 2 && p[0] == '0':
		base, digits = 8, p[1:]
	}
	var n uint64
	for i := 0; i < len(digits); i++ {
		c := digits[i]
		var d uint64
		switch {
		case c >= '0' && c <= '9':
			d = uint64(c - '0')
		case c >= 'a' && c <= 'f':
			d = uint64(c-'a') + 10
		case c >= 'A' && c <= 'F':
			d = uint64(c-'A') + 10
		default:
			return 0, fmt.Errorf("invalid IPv4 part %q", p)
		}
		if d >= base {
			return 0, fmt.Errorf("invalid IPv4 part %q", p)
		}
		n = n*base + d
		if n > 0xffffffff {
			return 0, errors.New("IPv4 part out of range")
		}
	}
	return n, nil
}
