package egress

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/netip"
	"path/filepath"
	"strings"
)

// Policy is a compiled egress policy. It is immutable and safe for
// concurrent use; its Check and CheckSocketPath methods are the agent
// pool's Deps.Check and Deps.CheckSocketPath.
//
// Precedence, first match wins, on the canonical address and its views (the
// address dialed plus every IPv4 address embedded in it, see views):
//
//  1. Deny rules (the base policy's, then the role's): a host rule matches
//     the requested host name, an address rule any view. Nothing overrides
//     a deny. A host rule only sees names: a request by IP literal (or by
//     another name for the same address) is not stopped by it, so deny
//     what must stay unreachable by address.
//  2. A host that does not normalise is denied ("invalid-host").
//  3. The gateway's own listeners (SelfAddrs) are denied, on any view, even
//     when an allow rule covers them: a caller must never loop requests
//     back into the gateway (or its admin listener).
//  4. Default-deny ranges: a view in one is denied unless allow rules
//     cover both the address dialed and that view. Only address rules
//     ("10.0.0.0/8", "127.0.0.1:8080") and pinned rules
//     ("db.internal@10.1.2.0/24") cover addresses; a host rule
//     ("*.example.com") never opens a default-denied address, so a name
//     under an allowed suffix that resolves to 169.254.169.254 or 127.0.0.1
//     stays denied. An allow of 64:ff9b::/96 does not open
//     64:ff9b::a9fe:a9fe unless 169.254.169.254 is allowed too.
//  5. Allow rules: the first address or pinned rule covering the address
//     dialed, else the first host rule matching the name, allows.
//  6. A role with AllowListOnly denies everything else
//     ("not-in-allow-list:role <name>").
//  7. Everything else (the public internet) is allowed ("default-allow").
//
// Ports: a rule with a port matches that port only. A rule for every
// address on a port is written per family: "0.0.0.0/0:25" and
// "[::/0]:25".
type Policy struct {
	deny, allow   []rule
	self          []netip.AddrPort
	local         map[netip.Addr]bool // this host's addresses, for unspecified self addrs
	socketPaths   map[string]bool
	allowListOnly bool
	role          string
	mode          Mode
	log           *slog.Logger
	onDecision    func(context.Context, Decision)
}

// New compiles opts. Errors name the offending entry.
func New(opts Options) (*Policy, error) {
	if err := validMode(opts.Mode); err != nil {
		return nil, err
	}
	p := &Policy{mode: opts.Mode, log: opts.Logger, onDecision: opts.OnDecision}
	if p.mode == ModeUnset {
		p.mode = Enforce
	}
	if p.log == nil {
		p.log = slog.New(slog.DiscardHandler)
	}
	var err error
	if p.allow, err = parseRules("allow", "", opts.Allow); err != nil {
		return nil, err
	}
	if p.deny, err = parseRules("deny", "", opts.Deny); err != nil {
		return nil, err
	}
	if p.socketPaths, err = socketPathSet(nil, opts.SocketPaths); err != nil {
		return nil, err
	}
	anyUnspecified := false
	for _, ap := range opts.SelfAddrs {
		if !ap.IsValid() || ap.Port() == 0 {
			return nil, fmt.Errorf("egress self address %s: want IP:port with a port", ap)
		}
		a := canonical(ap.Addr())
		anyUnspecified = anyUnspecified || a.IsUnspecified()
		p.self = append(p.self, netip.AddrPortFrom(a, ap.Port()))
	}
	if anyUnspecified {
		ifaddrs := opts.InterfaceAddrs
		if ifaddrs == nil {
			ifaddrs = interfaceAddrs
		}
		addrs, err := ifaddrs()
		if err != nil {
			return nil, fmt.Errorf("egress self addresses: %w", err)
		}
		p.local = make(map[netip.Addr]bool, len(addrs))
		for _, a := range addrs {
			p.local[canonical(a)] = true
		}
	}
	return p, nil
}

func interfaceAddrs() ([]netip.Addr, error) {
	as, err := net.InterfaceAddrs()
	if err != nil {
		return nil, err
	}
	var out []netip.Addr
	for _, a := range as {
		if pfx, err := netip.ParsePrefix(a.String()); err == nil {
			out = append(out, pfx.Addr())
		}
	}
	return out, nil
}

func socketPathSet(base map[string]bool, paths []string) (map[string]bool, error) {
	m := make(map[string]bool, len(base)+len(paths))
	for p := range base {
		m[p] = true
	}
	for i, p := range paths {
		if !cleanAbs(p) {
			return nil, fmt.Errorf("egress socket path %d %q: want an absolute, clean path", i+1, p)
		}
		m[p] = true
	}
	return m, nil
}

// cleanAbs reports whether p is absolute and already clean. Paths with
// ".." or "." are refused rather than cleaned: the kernel resolves ".."
// after following symlinks, filepath.Clean before, so a cleaned path may
// not be the socket that is dialed.
func cleanAbs(p string) bool {
	return filepath.IsAbs(p) && filepath.Clean(p) == p
}

// ForRole returns the policy for callers in role r: the base policy's
// denials, self addresses and default ranges, with the role's rules layered
// on (see Role). Call it once per role at start and keep the result; the
// identity layer then picks the role's policy per caller.
//
// Agents dial with a context of their own, and pooled sockets are shared by
// every request of an agent, so a role's policy belongs in the Deps of
// agents used only by that role (e.g. agent names keyed by role), never in
// one agent shared across roles.
func (p *Policy) ForRole(r Role) (*Policy, error) {
	if p.role != "" {
		return nil, fmt.Errorf("egress role %q: policy is already role %q's", r.Name, p.role)
	}
	if r.Name == "" {
		return nil, errors.New("egress role: a role needs a name")
	}
	if err := validMode(r.Mode); err != nil {
		return nil, fmt.Errorf("egress role %q: %w", r.Name, err)
	}
	allow, err := parseRules("allow", r.Name, r.Allow)
	if err != nil {
		return nil, err
	}
	deny, err := parseRules("deny", r.Name, r.Deny)
	if err != nil {
		return nil, err
	}
	q := *p
	q.role, q.allowListOnly = r.Name, r.AllowListOnly
	if r.Mode != ModeUnset {
		q.mode = r.Mode
	}
	q.deny = append(append([]rule(nil), p.deny...), deny...)
	baseSockets := p.socketPaths
	if r.AllowListOnly {
		q.allow, baseSockets = allow, nil
	} else {
		q.allow = append(append([]rule(nil), p.allow...), allow...)
	}
	if q.socketPaths, err = socketPathSet(baseSockets, r.SocketPaths); err != nil {
		return nil, fmt.Errorf("egress role %q: %w", r.Name, err)
	}
	return &q, nil
}

// Mode returns the mode the policy decides in.
func (p *Policy) Mode() Mode { return p.mode }

// Role returns the role's name, "" for the base policy.
func (p *Policy) Role() string { return p.role }

// Decide applies the policy to a dial of addr for the requested host (the
// host name or IP literal the request named, before resolution). It only
// decides: Check also logs and enforces.
func (p *Policy) Decide(host string, addr netip.AddrPort) Decision {
	ip, port := canonical(addr.Addr()), addr.Port()
	d := Decision{Host: host, Addr: netip.AddrPortFrom(ip, port), Role: p.role, Mode: p.mode}
	name, _, isIP, herr := NormalizeHost(host)
	if herr == nil {
		d.Host = name
	}
	if isIP || herr != nil {
		name = "" // host rules never match an IP literal or a broken name
	}
	vs := views(ip)

	for _, r := range p.deny {
		if !r.matchesName(name, port) {
			continue
		}
		if !r.prefix.IsValid() {
			return deny(d, r.name, "host "+d.Host+" matches a deny rule")
		}
		for _, v := range vs {
			if r.covers(v.addr) {
				return deny(d, r.name, describe(v, ip)+" matches a deny rule")
			}
		}
	}
	if herr != nil {
		return deny(d, "invalid-host", herr.Error())
	}
	for _, v := range vs {
		if s, ok := p.selfMatch(v.addr, port); ok {
			return deny(d, selfRulePrefix+s.String(), describe(v, ip)+" port "+fmt.Sprint(port)+" is the gateway's own listener")
		}
	}
	primary, primaryOK := p.addrAllow(name, ip, port)
	for _, v := range vs {
		rg, denied := defaultDenied(v.addr)
		if !denied {
			continue
		}
		if primaryOK {
			if _, ok := p.addrAllow(name, v.addr, port); ok {
				continue
			}
		}
		rule := "default-deny:" + rg.String()
		if v.via != "" {
			rule += " via " + v.via
		}
		return deny(d, rule, describe(v, ip)+" is "+rg.Name)
	}
	if primaryOK {
		return allow(d, primary.name, ip.String()+" matches an allow rule")
	}
	for _, r := range p.allow {
		if !r.prefix.IsValid() && r.matchesName(name, port) {
			return allow(d, r.name, "host "+d.Host+" matches an allow rule")
		}
	}
	if p.allowListOnly {
		return deny(d, "not-in-allow-list:role "+p.role, "no rule of role "+p.role+" allows it")
	}
	return allow(d, "default-allow", "public address")
}

// addrAllow returns the first allow rule with an address range (address or
// pinned rule) that covers a for this host and port.
func (p *Policy) addrAllow(host string, a netip.Addr, port uint16) (rule, bool) {
	for _, r := range p.allow {
		if r.prefix.IsValid() && r.matchesName(host, port) && r.covers(a) {
			return r, true
		}
	}
	return rule{}, false
}

// selfMatch reports the listener a:port would reach. An unspecified
// listener is reached through any local address; dialing an unspecified
// address reaches the local host, so it matches any listener on the port.
func (p *Policy) selfMatch(a netip.Addr, port uint16) (netip.AddrPort, bool) {
	for _, s := range p.self {
		if s.Port() != port {
			continue
		}
		sa := s.Addr()
		if sa == a || a.IsUnspecified() ||
			sa.IsUnspecified() && (a.IsLoopback() || p.local[a]) {
			return s, true
		}
	}
	return netip.AddrPort{}, false
}

func describe(v view, dialed netip.Addr) string {
	if v.via == "" {
		return v.addr.String()
	}
	return v.addr.String() + " (embedded in " + dialed.String() + ")"
}

func deny(d Decision, rule, reason string) Decision {
	d.Allowed, d.Rule, d.Reason = false, rule, reason
	return d
}

func allow(d Decision, rule, reason string) Decision {
	d.Allowed, d.Rule, d.Reason = true, rule, reason
	return d
}

// Check is the agent pool's Deps.Check: it decides, logs the decision,
// reports it to OnDecision, and returns nil when the dial may go ahead
// (allowed, or report-only) or else an *nodeerr.Error with code
// ERR_GATEWAY_EGRESS_DENIED, message "egress denied by rule <rule>: <host>
// (<ip>:<port>)", Address and Port set, wrapping a *DeniedError.
func (p *Policy) Check(ctx context.Context, host string, addr netip.AddrPort) error {
	return p.enforce(ctx, p.Decide(host, addr))
}

// CheckSocketPath is the agent pool's Deps.CheckSocketPath: a unix socket
// may be dialed only if its exact path is listed in SocketPaths (the
// base's or the role's). Rules: "allow:unix:<path>",
// "default-deny:unix-socket", "invalid-socket-path" (relative or unclean).
func (p *Policy) CheckSocketPath(ctx context.Context, path string) error {
	d := Decision{SocketPath: path, Role: p.role, Mode: p.mode}
	switch {
	case !cleanAbs(path):
		d = deny(d, "invalid-socket-path", "socket path must be absolute and clean")
	case p.socketPaths[path]:
		d = allow(d, "allow:unix:"+path, "listed socket path")
	case p.allowListOnly:
		d = deny(d, "not-in-allow-list:role "+p.role, "no rule of role "+p.role+" allows it")
	default:
		d = deny(d, "default-deny:unix-socket", "unix sockets are denied unless listed")
	}
	return p.enforce(ctx, d)
}

// CheckName checks a destination the gateway does not dial itself: the
// target of a CONNECT or of an absolute-form request sent through a proxy,
// which the proxy resolves. It resolves host through a Resolver over next
// and checks every address; the first denial wins. A host that does not
// resolve here is denied ("unresolved"): the policy cannot vouch for it.
//
// The proxy resolves again, so a rebinding name can still change between
// this check and the proxy's connect: where that matters, give the proxy a
// policy of its own or deny proxies that can reach internal ranges.
func (p *Policy) CheckName(ctx context.Context, host string, port uint16, next NetIPResolver) error {
	addrs, err := NewResolver(next).LookupNetIP(ctx, "ip", host)
	if err != nil || len(addrs) == 0 {
		d := Decision{Host: host, Role: p.role, Mode: p.mode}
		if n, _, _, nerr := NormalizeHost(host); nerr == nil {
			d.Host = n
		}
		reason := "no address"
		if err != nil {
			reason = err.Error()
		}
		return p.enforce(ctx, deny(d, "unresolved", reason))
	}
	for _, a := range addrs {
		if err := p.Check(ctx, host, netip.AddrPortFrom(a, port)); err != nil {
			return err
		}
	}
	return nil
}

// enforce logs d, reports it, and turns it into Check's result.
func (p *Policy) enforce(ctx context.Context, d Decision) error {
	p.logDecision(ctx, d)
	if p.onDecision != nil {
		p.onDecision(ctx, d)
	}
	if !d.Enforced() {
		return nil
	}
	return deniedError(d)
}

func (p *Policy) logDecision(ctx context.Context, d Decision) {
	level, msg := slog.LevelDebug, "egress allowed"
	if !d.Allowed {
		level, msg = slog.LevelWarn, "egress denied"
		if !d.Enforced() {
			msg = "egress would be denied (report-only)"
		}
	}
	if !p.log.Enabled(ctx, level) {
		return
	}
	attrs := make([]slog.Attr, 0, 8)
	attrs = append(attrs, slog.String("host", d.Host))
	switch {
	case d.SocketPath != "":
		attrs = append(attrs, slog.String("socket_path", d.SocketPath))
	case d.Addr.IsValid():
		attrs = append(attrs, slog.String("ip", d.Addr.Addr().String()), slog.Int("port", int(d.Addr.Port())))
	}
	attrs = append(attrs, slog.String("rule", d.Rule), slog.String("reason", d.Reason),
		slog.String("mode", d.Mode.String()), slog.Bool("allowed", d.Allowed))
	if d.Role != "" {
		attrs = append(attrs, slog.String("role", d.Role))
	}
	p.log.LogAttrs(ctx, level, msg, attrs...)
}

// String summarises the policy for the start-up log.
func (p *Policy) String() string {
	var b strings.Builder
	fmt.Fprintf(&b, "egress policy mode=%s", p.mode)
	if p.role != "" {
		fmt.Fprintf(&b, " role=%s allow-list-only=%t", p.role, p.allowListOnly)
	}
	for _, r := range p.deny {
		b.WriteString(" " + r.name)
	}
	for _, r := range p.allow {
		b.WriteString(" " + r.name)
	}
	for _, s := range p.self {
		b.WriteString(" self:" + s.String())
	}
	return b.String()
}
