package egress

import (
	"context"
	"fmt"
	"log/slog"
	"net/netip"
)

// Mode says whether a policy enforces its denials.
type Mode uint8

const (
	// ModeUnset is the zero Mode: Enforce for Options, "the base policy's
	// mode" for a Role.
	ModeUnset Mode = iota
	// Enforce fails a denied dial with ERR_GATEWAY_EGRESS_DENIED.
	Enforce
	// ReportOnly logs what it would deny and lets the dial go ahead; meant
	// for rolling a stricter policy out.
	ReportOnly
)

func (m Mode) String() string {
	switch m {
	case ModeUnset, Enforce:
		return "enforce"
	case ReportOnly:
		return "report-only"
	}
	return fmt.Sprintf("Mode(%d)", uint8(m))
}

// ParseMode parses "enforce" or "report-only" ("" is ModeUnset).
func ParseMode(s string) (Mode, error) {
	switch s {
	case "":
		return ModeUnset, nil
	case "enforce":
		return Enforce, nil
	case "report-only":
		return ReportOnly, nil
	}
	return ModeUnset, fmt.Errorf("egress mode %q: want enforce or report-only", s)
}

// Options configure a Policy. The zero Options is the secure default:
// every default-deny range denied, everything else allowed, enforced.
type Options struct {
	// Allow are rules opened on top of the default policy (--egress-allow),
	// in config.ParseEgressRule's syntax: "10.0.0.0/8", "192.0.2.7:8080",
	// "[2001:db8::/32]:443", "api.example.com", "*.example.com:443", plus
	// the pinned form "HOST[:PORT]@CIDR" ("db.internal.example:5432@10.1.2.0/24"),
	// the only way a host name opens a default-denied address.
	// Default none.
	Allow []string
	// Deny are rules denied before anything else (--egress-deny), same
	// syntax. Default none.
	Deny []string
	// SelfAddrs are the gateway's own listeners (gRPC, admin), which are
	// always denied, whatever Allow says. An unspecified address (":50051"
	// binds 0.0.0.0 / [::]) stands for every address of this host:
	// loopback, unspecified and the addresses InterfaceAddrs reports when
	// New runs. Default none.
	SelfAddrs []netip.AddrPort
	// InterfaceAddrs lists this host's addresses for SelfAddrs; nil means
	// the addresses of net.InterfaceAddrs. Tests inject fixed lists.
	InterfaceAddrs func() ([]netip.Addr, error)
	// SocketPaths are the unix socket paths that may be dialed, exact
	// absolute clean paths. Default none: every unix socket is denied
	// (a caller must not reach /var/run/docker.sock through the gateway).
	SocketPaths []string
	// Mode is Enforce (the default) or ReportOnly.
	Mode Mode
	// Logger receives one record per decision: denials at Warn, allowed
	// dials at Debug. nil discards them.
	Logger *slog.Logger
	// OnDecision, if set, is called with every decision Check,
	// CheckSocketPath and CheckName take, report-only ones included, on
	// the dialing goroutine; telemetry uses it to put decisions on spans.
	// It must not block.
	OnDecision func(ctx context.Context, d Decision)
}

// Role is a per-caller layer over the base policy: the policy a caller gets
// when its identity maps to this role (see Policy.ForRole).
type Role struct {
	// Name identifies the role in decisions ("role:<name>:allow:...") and
	// logs. Required.
	Name string
	// Allow and Deny are the role's own rules, in Options.Allow's syntax.
	// Deny adds to the base policy's denials. Allow adds to the base
	// policy's allows, or replaces them when AllowListOnly is set.
	Allow, Deny []string
	// SocketPaths are unix sockets the role may dial, added to the base
	// policy's (or replacing them, with AllowListOnly).
	SocketPaths []string
	// AllowListOnly limits the role to what its own Allow and SocketPaths
	// match: anything else is denied with "not-in-allow-list:role <name>".
	// The base policy's denials, its self addresses and the default-deny
	// ranges still apply.
	AllowListOnly bool
	// Mode overrides the base policy's mode; ModeUnset inherits it.
	Mode Mode
}

func validMode(m Mode) error {
	if m > ReportOnly {
		return fmt.Errorf("egress mode %d is not a Mode", m)
	}
	return nil
}
