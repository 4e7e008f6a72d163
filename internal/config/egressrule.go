package config

import (
	"errors"
	"fmt"
	"net/netip"
	"strconv"
	"strings"
)

// EgressRule is one parsed --egress-allow / --egress-deny entry. Exactly one
// of Prefix (valid) and Host (non-empty) is set. This package only checks the
// syntax; the egress policy decides what a rule means at dial time.
type EgressRule struct {
	// Prefix is the address range of a CIDR or IP rule (an IP is a /32 or /128).
	Prefix netip.Prefix
	// Host is a lower-case host name ("example.com"), or a pattern whose
	// leading "*." stands for one or more labels ("*.example.com").
	Host string
	// Port restricts the rule to one destination port; 0 means any port.
	Port uint16
}

// ParseEgressRule parses one rule:
//
//	10.0.0.0/8            CIDR            10.0.0.0/8:443    with a port
//	192.0.2.7             one address     192.0.2.7:8080
//	2001:db8::/32         IPv6 CIDR       [2001:db8::/32]:443
//	example.com           one host        example.com:443
//	*.example.com         its subdomains  *.example.com:443
//
// A CIDR with host bits set (10.0.0.1/8) is refused as a likely typo.
func ParseEgressRule(s string) (EgressRule, error) {
	host, port, err := splitRulePort(s)
	if err != nil {
		return EgressRule{}, err
	}
	r := EgressRule{Port: port}
	if strings.Contains(host, "/") {
		p, err := netip.ParsePrefix(host)
		if err != nil {
			return EgressRule{}, fmt.Errorf("invalid CIDR %q", host)
		}
		if p != p.Masked() {
			return EgressRule{}, fmt.Errorf("CIDR %q has host bits set (did you mean %s?)", host, p.Masked())
		}
		r.Prefix = p
		return r, nil
	}
	if a, err := netip.ParseAddr(host); err == nil {
		if a.Zone() != "" {
			return EgressRule{}, fmt.Errorf("address %q: zones are not allowed", host)
		}
		r.Prefix = netip.PrefixFrom(a, a.BitLen())
		return r, nil
	}
	if err := checkHostPattern(host); err != nil {
		return EgressRule{}, err
	}
	r.Host = strings.ToLower(host)
	return r, nil
}

// splitRulePort splits an optional ":port". IPv6 with a port needs brackets,
// as in URLs; bare IPv6 (several colons) has no port.
func splitRulePort(s string) (string, uint16, error) {
	if s == "" {
		return "", 0, errors.New("empty rule")
	}
	var host, port string
	switch {
	case strings.HasPrefix(s, "["):
		end := strings.Index(s, "]")
		if end < 0 {
			return "", 0, fmt.Errorf("rule %q: missing ]", s)
		}
		host, port = s[1:end], s[end+1:]
		if port != "" && !strings.HasPrefix(port, ":") {
			return "", 0, fmt.Errorf("rule %q: want [IPv6]:port", s)
		}
		if port == ":" {
			return "", 0, fmt.Errorf("rule %q: empty port", s)
		}
		port = strings.TrimPrefix(port, ":")
		if !strings.Contains(host, ":") {
			return "", 0, fmt.Errorf("rule %q: brackets are only for IPv6", s)
		}
	case strings.Count(s, ":") > 1:
		host = s
	default:
		var hasPort bool
		host, port, hasPort = strings.Cut(s, ":")
		if hasPort && port == "" {
			return "", 0, fmt.Errorf("rule %q: empty port", s)
		}
	}
	if port == "" {
		return host, 0, nil
	}
	n, err := strconv.ParseUint(port, 10, 16)
	if err != nil || n == 0 {
		return "", 0, fmt.Errorf("rule %q: invalid port %q (want 1-65535)", s, port)
	}
	return host, uint16(n), nil
}

// checkHostPattern accepts a DNS name (RFC 1123 labels), optionally behind a
// leading "*." wildcard label.
func checkHostPattern(h string) error {
	name := strings.TrimPrefix(h, "*.")
	if strings.Contains(name, "*") {
		return fmt.Errorf("host pattern %q: a wildcard is only allowed as a leading \"*.\"", h)
	}
	if name == "" || len(name) > 253 {
		return fmt.Errorf("host pattern %q: want a host name such as example.com or *.example.com", h)
	}
	labels := strings.Split(name, ".")
	for _, l := range labels {
		if !validLabel(l) {
			return fmt.Errorf("host pattern %q: invalid label %q", h, l)
		}
	}
	if isDigits(labels[len(labels)-1]) {
		// "10.0.0" is not a host name, it is a mistyped address.
		return fmt.Errorf("host pattern %q: looks like an incomplete IP address", h)
	}
	return nil
}

func validLabel(l string) bool {
	if l == "" || len(l) > 63 || l[0] == '-' || l[len(l)-1] == '-' {
		return false
	}
	for i := 0; i < len(l); i++ {
		c := l[i]
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '-') {
			return false
		}
	}
	return true
}

func isDigits(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return false
		}
	}
	return s != ""
}
