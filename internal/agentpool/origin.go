package agentpool

import (
	"context"
	"fmt"
)

// CheckOrigin is the egress check of the origin of an absolute-form
// request: an http: target going through t.Proxy, whose socket is the
// proxy's and carries requests to any origin, so the check cannot happen
// when that socket is dialed. The engine calls it before every Acquire of
// such a target (the first request, each redirect hop, each login retry);
// the agent's Deps.CheckName decides, bounded by Deps.DNSTimeout. Every
// other target answers nil at once: a direct target is checked when it is
// dialed (Deps.Check on each resolved address), a CONNECT target when its
// tunnel is dialed (dialViaProxy), and their sockets serve that one origin.
//
// A denial is an *nodeerr.Error (ERR_GATEWAY_EGRESS_DENIED for the egress
// policy's), as a dial's would be.
func (a *Agent) CheckOrigin(ctx context.Context, t Target) error {
	if t.Proxy == nil || t.SocketPath != "" || t.Protocol != "http:" {
		return nil
	}
	return a.checkOrigin(ctx, t)
}

// checkOrigin runs Deps.CheckName for the origin of t (behind t.Proxy).
func (a *Agent) checkOrigin(ctx context.Context, t Target) error {
	chk := a.deps.CheckName
	if chk == nil {
		return nil
	}
	host := t.Host
	if host == "" {
		host = "localhost"
	}
	port := targetPort(t)
	cctx, cancel := context.WithTimeout(ctx, a.deps.DNSTimeout)
	defer cancel()
	if err := chk(cctx, host, uint16(port)); err != nil {
		return denied(err, host, fmt.Sprintf("egress to %s port %d through proxy %s denied", host, port, proxyDisplay(t.Proxy)), host, port)
	}
	return nil
}
