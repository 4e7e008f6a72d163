package main

import (
	"context"
	"fmt"
	"log/slog"
	"net"
	"net/netip"
	"sync/atomic"

	"github.com/httpgateway/httpgateway/internal/agentpool"
	"github.com/httpgateway/httpgateway/internal/config"
	"github.com/httpgateway/httpgateway/internal/egress"
	"github.com/httpgateway/httpgateway/internal/nodeerr"
)

// egressHook is the egress policy as every agent's dial hooks see it. The
// policy needs the gateway's own bound addresses (it always denies them),
// which exist only after Listen, while the service (and the anonymous
// `global` agent) is built before; so the hooks read the policies through
// an atomic pointer set once the listeners are bound. Until then every
// dial is denied.
//
// Each role of --egress-roles has its own policy (egress.Policy.ForRole of
// the base policy); an agent is created for one role and its hooks always
// consult that role's policy (deps). A role nothing configures gets the
// base policy.
type egressHook struct {
	policies atomic.Pointer[egressPolicies]
	// resolver resolves names for the hooks; nil is net.DefaultResolver.
	// Tests inject a fake.
	resolver egress.NetIPResolver
}

// egressPolicies are the compiled policies, immutable once stored.
type egressPolicies struct {
	base  *egress.Policy
	roles map[string]*egress.Policy
}

// forRole returns role's policy, the base policy for a role without one.
func (p *egressPolicies) forRole(role string) *egress.Policy {
	if rp, ok := p.roles[role]; ok {
		return rp
	}
	return p.base
}

// depsFor is rpc.Options.AgentDepsFor: the dial hooks of the agents of
// callers in role.
func (h *egressHook) depsFor(role string) agentpool.Deps {
	next := h.resolver
	if next == nil {
		next = net.DefaultResolver
	}
	policy := func() (*egress.Policy, error) {
		ps := h.policies.Load()
		if ps == nil {
			return nil, nodeerr.New(nodeerr.ERR_GATEWAY_EGRESS_DENIED, "egress denied: the policy is not ready")
		}
		return ps.forRole(role), nil
	}
	return agentpool.Deps{
		Resolver: egress.NewResolver(next),
		Check: func(ctx context.Context, host string, addr netip.AddrPort) error {
			p, err := policy()
			if err != nil {
				return err
			}
			return p.Check(ctx, host, addr)
		},
		CheckSocketPath: func(ctx context.Context, path string) error {
			p, err := policy()
			if err != nil {
				return err
			}
			return p.CheckSocketPath(ctx, path)
		},
		CheckName: func(ctx context.Context, host string, port uint16) error {
			p, err := policy()
			if err != nil {
				return err
			}
			return p.CheckName(ctx, host, port, next)
		},
	}
}

// install builds the base policy and each role's from the configuration,
// with the bound listeners as the gateway's own addresses.
func (h *egressHook) install(cfg config.Config, log *slog.Logger, self ...net.Addr) error {
	ps, err := buildPolicies(cfg, log, self...)
	if err != nil {
		return err
	}
	h.policies.Store(ps)
	log.Info("egress policy", "policy", ps.base.String())
	for _, r := range cfg.EgressRoleList() {
		log.Info("egress policy", "role", r.Name, "policy", ps.roles[r.Name].String())
	}
	return nil
}

// buildPolicies compiles the configuration's policies.
func buildPolicies(cfg config.Config, log *slog.Logger, self ...net.Addr) (*egressPolicies, error) {
	var selfAddrs []netip.AddrPort
	for _, a := range self {
		if a == nil {
			continue
		}
		if ap, err := netip.ParseAddrPort(a.String()); err == nil {
			selfAddrs = append(selfAddrs, ap)
		}
	}
	mode, err := egress.ParseMode(cfg.EgressMode)
	if err != nil {
		return nil, err
	}
	base, err := egress.New(egress.Options{Allow: cfg.EgressAllow, Deny: cfg.EgressDeny, SelfAddrs: selfAddrs, Mode: mode, Logger: log})
	if err != nil {
		return nil, err
	}
	ps := &egressPolicies{base: base, roles: map[string]*egress.Policy{}}
	for _, r := range cfg.EgressRoleList() {
		rmode, err := egress.ParseMode(r.Mode)
		if err != nil {
			return nil, fmt.Errorf("egress role %q: %w", r.Name, err)
		}
		rp, err := base.ForRole(egress.Role{Name: r.Name, Allow: r.Allow, Deny: r.Deny, AllowListOnly: r.AllowListOnly, Mode: rmode})
		if err != nil {
			return nil, err
		}
		ps.roles[r.Name] = rp
	}
	return ps, nil
}
