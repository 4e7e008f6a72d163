package egress

import (
	"fmt"
	"net/netip"
	"strconv"
	"strings"

	"github.com/httpgateway/httpgateway/internal/config"
)

// rule is one compiled allow or deny rule. It matches on an address range
// (prefix valid), on the requested host name (host set), or, for a pinned
// rule written "HOST@CIDR", on both: the host name and an address in the
// range. port 0 matches any port.
type rule struct {
	prefix netip.Prefix
	host   string // "example.com", or "*.example.com" for one or more labels below it
	port   uint16
	// name is how decisions and errors name the rule: "allow:10.0.0.0/8",
	// "deny:*.internal.example:443", "role:ci:allow:db.internal@10.1.2.0/24".
	name string
}

// parseRules compiles rules in the --egress-allow syntax (see
// config.ParseEgressRule), plus the pinned form "HOST[:PORT]@CIDR".
// kind is "allow" or "deny"; role prefixes the names of a role's rules.
func parseRules(kind, role string, specs []string) ([]rule, error) {
	out := make([]rule, 0, len(specs))
	for i, s := range specs {
		r, err := parseRule(strings.TrimSpace(s))
		if err != nil {
			where := "egress-" + kind
			if role != "" {
				where = "role " + strconv.Quote(role) + " " + kind
			}
			return nil, fmt.Errorf("%s entry %d: %w", where, i+1, err)
		}
		r.name = kind + ":" + r.String()
		if role != "" {
			r.name = "role:" + role + ":" + r.name
		}
		out = append(out, r)
	}
	return out, nil
}

func parseRule(s string) (rule, error) {
	hostPart, cidrPart, pinned := strings.Cut(s, "@")
	er, err := config.ParseEgressRule(hostPart)
	if err != nil {
		return rule{}, err
	}
	r := rule{prefix: er.Prefix, host: er.Host, port: er.Port}
	if !pinned {
		return r, nil
	}
	if r.host == "" {
		return rule{}, fmt.Errorf("rule %q: want HOST[:PORT]@CIDR", s)
	}
	cr, err := config.ParseEgressRule(cidrPart)
	if err != nil {
		return rule{}, fmt.Errorf("rule %q: %w", s, err)
	}
	if !cr.Prefix.IsValid() || cr.Port != 0 {
		return rule{}, fmt.Errorf("rule %q: want HOST[:PORT]@CIDR", s)
	}
	r.prefix = cr.Prefix
	return r, nil
}

// String writes the rule back in its input syntax, canonicalised.
func (r rule) String() string {
	var s string
	switch {
	case r.host != "" && r.prefix.IsValid():
		s = r.host + portSuffix(r.port) + "@" + r.prefix.String()
		return s
	case r.host != "":
		s = r.host
	case r.prefix.IsSingleIP():
		s = r.prefix.Addr().String()
	default:
		s = r.prefix.String()
	}
	if r.port != 0 && strings.Contains(s, ":") {
		s = "[" + s + "]"
	}
	return s + portSuffix(r.port)
}

func portSuffix(p uint16) string {
	if p == 0 {
		return ""
	}
	return ":" + strconv.Itoa(int(p))
}

// matchesName reports whether the rule's port and host name (if it has
// one) match.
func (r rule) matchesName(host string, port uint16) bool {
	if r.port != 0 && r.port != port {
		return false
	}
	return r.host == "" || matchHost(r.host, host)
}

// covers reports whether the rule's range holds a. A host-only rule covers
// no address.
func (r rule) covers(a netip.Addr) bool {
	return r.prefix.IsValid() && r.prefix.Contains(a)
}

// matchHost matches a normalised host name against "example.com" (that
// name only) or "*.example.com" (any name below it, not the name itself).
// An empty host (an IP literal was requested) matches no pattern.
func matchHost(pattern, host string) bool {
	if host == "" {
		return false
	}
	if suffix, ok := strings.CutPrefix(pattern, "*"); ok {
		return len(host) > len(suffix) && strings.HasSuffix(host, suffix)
	}
	return host == pattern
}
