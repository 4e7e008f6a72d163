package main

import (
	"context"
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
// which exist only after Listen, while the agents are built before; so the
// hooks read the policy through an atomic pointer set once the listeners
// are bound. Until then every dial is denied.
type egressHook struct {
	policy atomic.Pointer[egress.Policy]
}

func (h *egressHook) deps() agentpool.Deps {
	return agentpool.Deps{
		Resolver:        egress.NewResolver(net.DefaultResolver),
		Check:           h.check,
		CheckSocketPath: h.checkSocketPath,
	}
}

func notReady() error {
	return nodeerr.New(nodeerr.ERR_GATEWAY_EGRESS_DENIED, "egress denied: the policy is not ready")
}

func (h *egressHook) check(ctx context.Context, host string, addr netip.AddrPort) error {
	p := h.policy.Load()
	if p == nil {
		return notReady()
	}
	return p.Check(ctx, host, addr)
}

func (h *egressHook) checkSocketPath(ctx context.Context, path string) error {
	p := h.policy.Load()
	if p == nil {
		return notReady()
	}
	return p.CheckSocketPath(ctx, path)
}

// install builds the policy from the configuration with the bound
// listeners as the gateway's own addresses.
func (h *egressHook) install(cfg config.Config, log *slog.Logger, self ...net.Addr) error {
	var selfAddrs []netip.AddrPort
	for _, a := range self {
		if a == nil {
			continue
		}
		if ap, err := netip.ParseAddrPort(a.String()); err == nil {
			selfAddrs = append(selfAddrs, ap)
		}
	}
	p, err := egress.New(egress.Options{Allow: cfg.EgressAllow, Deny: cfg.EgressDeny, SelfAddrs: selfAddrs, Logger: log})
	if err != nil {
		return err
	}
	h.policy.Store(p)
	log.Info("egress policy", "policy", p.String())
	return nil
}
