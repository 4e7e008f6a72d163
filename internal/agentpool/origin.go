package agentpool

import (
	"context"
	"fmt"
	"net/url"
	"strconv"
	"strings"

	"github.com/httpgateway/httpgateway/internal/nodeerr"
)

// CheckOrigin is the egress check of the origin of an absolute-form
// request: an http: target going through t.Proxy, whose socket is the
// proxy's and carries requests to any origin, so the check cannot happen
// when that socket is dialed. The engine calls it before every Acquire of
// such a target (the first request, each redirect hop, each login retry);
// the agent's Deps.CheckName decides, bounded by Deps.DNSTimeout and by
// ctx, which the engine cancels when the request ends. Every other target
// answers nil at once: a direct target is checked when it is dialed
// (Deps.Check on each resolved address), a CONNECT target when its tunnel
// is dialed (dialViaProxy), and their sockets serve that one origin.
//
// requestTarget is the request-target the request's head carries. The
// proxy, not the pool, reads the origin from it, so the check is only
// worth anything if it names exactly the origin checked: it must be
// "http://" followed by t's host and port (the port may be left out when
// it is 80) and a "/" (or be "*", an OPTIONS to the proxy itself, which
// names no origin). Anything else fails closed, before CheckName is asked,
// with ERR_GATEWAY_EGRESS_DENIED: it would be an engine bug, and the
// proxy must not see such a request.
//
// A denial is an *nodeerr.Error (ERR_GATEWAY_EGRESS_DENIED for the egress
// policy's), as a dial's would be. When ctx ends first, its error is
// returned as it is: the request went away, nothing was denied.
func (a *Agent) CheckOrigin(ctx context.Context, t Target, requestTarget string) error {
	if !absoluteForm(t) {
		return nil
	}
	host, port := originOf(t)
	if !namesOrigin(requestTarget, host, port) {
		return &nodeerr.Error{Code: nodeerr.ERR_GATEWAY_EGRESS_DENIED,
			Message: fmt.Sprintf("egress to %s port %d through proxy %s denied: the request-target names another origin",
				host, port, proxyDisplay(t.Proxy)),
			Address: host, Port: port}
	}
	return a.checkOrigin(ctx, t)
}

// OriginCheckMayBlock reports whether CheckOrigin for t may take time: t
// is an absolute-form target and the agent has a Deps.CheckName, which may
// resolve the origin (up to Deps.DNSTimeout). For any other target
// CheckOrigin answers at once, so the engine calls it inline.
func (a *Agent) OriginCheckMayBlock(t Target) bool {
	return absoluteForm(t) && a.deps.CheckName != nil
}

// absoluteForm reports whether requests to t are written in absolute-form
// on a socket of t.Proxy (an http: target through a proxy; a unix socket
// is never proxied).
func absoluteForm(t Target) bool {
	return t.Proxy != nil && t.SocketPath == "" && t.Protocol == "http:"
}

// originOf is the host and port CheckName is asked about for t.
func originOf(t Target) (string, int) {
	host := t.Host
	if host == "" {
		host = "localhost"
	}
	return host, targetPort(t)
}

// namesOrigin reports whether the absolute-form request-target rt names
// the origin host:port and nothing else. It is parsed as a proxy would
// (net/url), and its raw text must also be exactly "http://" + authority
// + "/...": no userinfo, no escapes in the authority, nothing between the
// authority and the path that another parser could read differently.
func namesOrigin(rt, host string, port int) bool {
	if rt == "*" {
		return true
	}
	u, err := url.Parse(rt)
	if err != nil || u.Scheme != "http" || u.User != nil || u.Opaque != "" || u.Host == "" {
		return false
	}
	rest, ok := strings.CutPrefix(rt, "http://"+u.Host)
	if !ok || !strings.HasPrefix(rest, "/") {
		return false
	}
	if u.Hostname() != host {
		return false
	}
	if p := u.Port(); p != "" {
		return p == strconv.Itoa(port)
	}
	return port == 80 && !strings.HasSuffix(u.Host, ":")
}

// checkOrigin runs Deps.CheckName for the origin of t (behind t.Proxy).
func (a *Agent) checkOrigin(ctx context.Context, t Target) error {
	chk := a.deps.CheckName
	if chk == nil {
		return nil
	}
	host, port := originOf(t)
	cctx, cancel := context.WithTimeout(ctx, a.deps.DNSTimeout)
	defer cancel()
	if err := chk(cctx, host, uint16(port)); err != nil {
		if ctx.Err() != nil {
			return ctx.Err()
		}
		return denied(err, host, fmt.Sprintf("egress to %s port %d through proxy %s denied", host, port, proxyDisplay(t.Proxy)), host, port)
	}
	return nil
}
