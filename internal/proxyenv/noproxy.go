package proxyenv

import (
	"net/netip"
	"strconv"
	"strings"
)

// RuleKind is the NO_PROXY form of one entry.
type RuleKind uint8

const (
	// RuleInvalid is an entry no host can match (a malformed port, range
	// or CIDR); it is kept so that inspection shows what was written.
	RuleInvalid RuleKind = iota
	// RuleAll is `*`: every host.
	RuleAll
	// RuleHost is an exact host name, `example.com`.
	RuleHost
	// RuleSuffix is `.example.com`: example.com and every name under it.
	RuleSuffix
	// RuleWildcard is `*.example.com`: every name under example.com, not
	// example.com itself.
	RuleWildcard
	// RuleIP is an exact IP address, `192.168.1.100` or `::1` (`[::1]`).
	RuleIP
	// RuleIPRange is an inclusive range, `192.168.1.1-192.168.1.100`
	// (IPv6 too; both ends of one family).
	RuleIPRange
	// RuleCIDR is a CIDR block, `10.0.0.0/8` or `fd00::/8`.
	RuleCIDR
)

var ruleKindNames = [...]string{"invalid", "all", "host", "suffix", "wildcard", "ip", "ip-range", "cidr"}

func (k RuleKind) String() string {
	if int(k) < len(ruleKindNames) {
		return ruleKindNames[k]
	}
	return "RuleKind(" + strconv.Itoa(int(k)) + ")"
}

// Rule is one parsed NO_PROXY entry.
type Rule struct {
	// Entry is the entry as written (trimmed): what ProxyFor reports as
	// the rule that decided a request.
	Entry string
	Kind  RuleKind
	// Host is the lower-case name for RuleHost, the domain (no leading
	// dot or star) for RuleSuffix and RuleWildcard.
	Host string
	// Port restricts host and IP forms to one port (`example.com:8080`,
	// `[::1]:8080`); 0 matches any port.
	Port int
	// Addr is the address of RuleIP, Lo and Hi the ends of RuleIPRange,
	// Prefix the block of RuleCIDR; IPv4-mapped IPv6 addresses are
	// unmapped.
	Addr   netip.Addr
	Lo, Hi netip.Addr
	Prefix netip.Prefix
}

// ParseNoProxy splits a NO_PROXY value on commas and parses each entry;
// empty entries are skipped. Entries are case-insensitive; surrounding
// white space is trimmed.
//
// Suffix forms match on label boundaries: `.example.com` matches
// example.com and a.example.com but not badexample.com (Node's current
// implementation compares with a plain endsWith, which would; curl and Go
// match on labels, and a bypass rule that silently covers other domains
// would send their traffic around the proxy).
func ParseNoProxy(s string) []Rule {
	var rules []Rule
	for _, e := range strings.Split(s, ",") {
		e = strings.TrimSpace(e)
		if e == "" {
			continue
		}
		rules = append(rules, parseRule(e))
	}
	return rules
}

func parseRule(entry string) Rule {
	r := Rule{Entry: entry}
	e := strings.ToLower(entry)
	switch {
	case e == "*":
		r.Kind = RuleAll
		return r
	case strings.Contains(e, "/"):
		if p, err := netip.ParsePrefix(strings.Trim(e, "[]")); err == nil {
			r.Kind, r.Prefix = RuleCIDR, unmapPrefix(p).Masked()
		}
		return r
	}
	if lo, hi, ok := strings.Cut(e, "-"); ok {
		a, errA := parseIP(lo)
		b, errB := parseIP(hi)
		if errA == nil && errB == nil {
			if a.Is4() == b.Is4() {
				r.Kind, r.Lo, r.Hi = RuleIPRange, a, b
			}
			return r
		}
		// Host names contain dashes too; fall through.
	}
	host, port, ok := splitHostPort(e)
	if !ok {
		return r
	}
	r.Port = port
	if ip, err := parseIP(host); err == nil {
		r.Kind, r.Addr = RuleIP, ip
		return r
	}
	host = strings.TrimSuffix(host, ".")
	switch {
	case strings.HasPrefix(host, "*."):
		r.Kind, r.Host = RuleWildcard, host[2:]
	case strings.HasPrefix(host, "."):
		r.Kind, r.Host = RuleSuffix, host[1:]
	default:
		r.Kind, r.Host = RuleHost, host
	}
	if r.Host == "" {
		r.Kind = RuleInvalid
	}
	return r
}

// splitHostPort splits an entry into host and optional port: `host`,
// `host:port`, `[v6]`, `[v6]:port`, or a bare IPv6 literal (more than one
// colon, no port). ok is false for a malformed port or bracket.
func splitHostPort(e string) (host string, port int, ok bool) {
	if strings.HasPrefix(e, "[") {
		end := strings.IndexByte(e, ']')
		if end < 0 {
			return "", 0, false
		}
		host, rest := e[1:end], e[end+1:]
		if rest == "" {
			return host, 0, true
		}
		p, ok := parsePort(strings.TrimPrefix(rest, ":"))
		return host, p, ok && strings.HasPrefix(rest, ":")
	}
	switch strings.Count(e, ":") {
	case 0:
		return e, 0, true
	case 1:
		h, ps, _ := strings.Cut(e, ":")
		p, ok := parsePort(ps)
		return h, p, ok && h != ""
	default:
		return e, 0, true // a bare IPv6 literal
	}
}

func parsePort(s string) (int, bool) {
	n, err := strconv.Atoi(s)
	if err != nil || n < 1 || n > 65535 || s[0] == '+' {
		return 0, false
	}
	return n, true
}

func parseIP(s string) (netip.Addr, error) {
	ip, err := netip.ParseAddr(strings.Trim(strings.TrimSpace(s), "[]"))
	if err != nil {
		return netip.Addr{}, err
	}
	return ip.Unmap().WithZone(""), nil
}

func unmapPrefix(p netip.Prefix) netip.Prefix {
	if a := p.Addr(); a.Is4In6() && p.Bits() >= 96 {
		return netip.PrefixFrom(a.Unmap(), p.Bits()-96)
	}
	return p
}

// host is a request host prepared for matching: lower case, no brackets,
// no trailing dot, with its IP when it is a literal.
type host struct {
	name string
	ip   netip.Addr // invalid unless name is an IP literal
}

func normalizeHost(h string) host {
	if h == "" {
		h = "localhost"
	}
	h = strings.ToLower(strings.TrimSuffix(strings.Trim(h, "[]"), "."))
	out := host{name: h}
	if ip, err := netip.ParseAddr(h); err == nil {
		out.ip = ip.Unmap().WithZone("")
	}
	return out
}

func (r *Rule) match(h host, port int) bool {
	if r.Port != 0 && r.Port != port {
		return false
	}
	isIP := h.ip.IsValid()
	switch r.Kind {
	case RuleAll:
		return true
	case RuleHost:
		return !isIP && h.name == r.Host
	case RuleSuffix:
		return !isIP && (h.name == r.Host || strings.HasSuffix(h.name, "."+r.Host))
	case RuleWildcard:
		return !isIP && strings.HasSuffix(h.name, "."+r.Host)
	case RuleIP:
		return isIP && h.ip == r.Addr
	case RuleIPRange:
		return isIP && h.ip.Is4() == r.Lo.Is4() && r.Lo.Compare(h.ip) <= 0 && h.ip.Compare(r.Hi) <= 0
	case RuleCIDR:
		return isIP && r.Prefix.Contains(h.ip)
	}
	return false
}
