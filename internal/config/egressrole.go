package config

import (
	"fmt"
	"sort"
	"strings"
)

// Egress modes, as --egress-mode and a role's "mode:" setting spell them.
const (
	EgressModeEnforce    = "enforce"
	EgressModeReportOnly = "report-only"
)

// EgressRole is one role's egress layer, gathered from the --egress-roles
// items that name it. The egress policy compiles it (egress.Policy.ForRole);
// this package only checks the syntax.
type EgressRole struct {
	// Name is the role, as the tokens file and --auth-roles give it to an
	// identity.
	Name string
	// Allow and Deny are the role's own rules, in --egress-allow syntax.
	Allow, Deny []string
	// Mode is EgressModeEnforce, EgressModeReportOnly, or "" to follow
	// --egress-mode.
	Mode string
	// AllowListOnly limits the role to what its own Allow rules match.
	AllowListOnly bool
}

// ParseEgressRoles gathers --egress-roles items into roles, sorted by name.
// Each item is "<role>:<setting>", the spelling a decision of the role's
// policy uses for its rules ("role:ci:allow:api.example.com:443"):
//
//	ci:allow:api.example.com:443   an allow rule of role ci (--egress-allow syntax)
//	ci:deny:10.0.0.0/8             a deny rule of role ci
//	ci:mode:report-only            role ci's mode: enforce or report-only
//	ci:allow-list-only             role ci may reach only what its allow rules match
//
// A role name is 1-64 characters of [A-Za-z0-9._-]. Errors name the item by
// its position.
func ParseEgressRoles(items []string) ([]EgressRole, error) {
	byName := map[string]*EgressRole{}
	for i, item := range items {
		role, setting, ok := strings.Cut(strings.TrimSpace(item), ":")
		if !ok || !validRoleName(role) {
			return nil, fmt.Errorf("entry %d %q: want <role>:<setting> with a role of 1-64 characters of [A-Za-z0-9._-]", i+1, item)
		}
		r := byName[role]
		if r == nil {
			r = &EgressRole{Name: role}
			byName[role] = r
		}
		kind, arg, hasArg := strings.Cut(setting, ":")
		switch {
		case kind == "allow" || kind == "deny":
			if _, err := ParseEgressRule(arg); err != nil {
				return nil, fmt.Errorf("entry %d %q: %w", i+1, item, err)
			}
			if kind == "allow" {
				r.Allow = append(r.Allow, arg)
			} else {
				r.Deny = append(r.Deny, arg)
			}
		case kind == "mode":
			if arg != EgressModeEnforce && arg != EgressModeReportOnly {
				return nil, fmt.Errorf("entry %d %q: mode %q: want %s or %s", i+1, item, arg, EgressModeEnforce, EgressModeReportOnly)
			}
			if r.Mode != "" && r.Mode != arg {
				return nil, fmt.Errorf("entry %d %q: role %s has two modes", i+1, item, role)
			}
			r.Mode = arg
		case kind == "allow-list-only" && !hasArg:
			r.AllowListOnly = true
		default:
			return nil, fmt.Errorf("entry %d %q: unknown setting %q (want allow:RULE, deny:RULE, mode:MODE or allow-list-only)", i+1, item, kind)
		}
	}
	out := make([]EgressRole, 0, len(byName))
	for _, r := range byName {
		out = append(out, *r)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Name < out[j].Name })
	return out, nil
}

// validRoleName reports whether s is 1-64 characters of [A-Za-z0-9._-].
func validRoleName(s string) bool {
	if len(s) == 0 || len(s) > 64 {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !('a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' || c == '.' || c == '_' || c == '-') {
			return false
		}
	}
	return true
}
