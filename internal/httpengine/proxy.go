package httpengine

import (
	"context"
	"strconv"
	"strings"

	"github.com/httpgateway/httpgateway/internal/agentpool"
)

// applyProxy asks the agent whether the request goes through a proxy (its
// proxyEnv and NO_PROXY) and records the decision on r.target, so that the
// head is rendered in the right form and the pool dials the right way.
// Called at creation and for every redirect hop.
func (c *ClientRequest) applyProxy(r *resolved) {
	d := c.agent.ProxyFor(r.target)
	r.target.Proxy = d.URL
	r.proxyRule = d.Rule
	if c.proxyAuth != "" {
		r.target.ProxyAuth = c.proxyAuth
	}
}

// acquireTarget asks the agent for a socket for t, after the egress check
// of the origin behind a proxy that an absolute-form request needs per
// request (agentpool.Agent.CheckOrigin; every other target is checked when
// dialed). A denied origin fails the request before any socket: 'error',
// 'close', and no want (nil). Never called with mu held: the check may
// resolve the origin, and the pool may call back.
func (c *ClientRequest) acquireTarget(t agentpool.Target) *agentpool.Want {
	if err := c.agent.CheckOrigin(context.Background(), t); err != nil {
		c.fail(classify(err, c.r), false)
		return nil
	}
	return c.agent.Acquire(t, exchange{c})
}

// requestTarget is the request-target of the head: origin-form, or
// absolute-form for an http request through a proxy (RFC 9112 section
// 3.2.2), which the proxy forwards.
func (r *resolved) requestTarget() string {
	if r.target.Proxy == nil || r.protocol != "http:" {
		return r.path
	}
	host := r.host
	if strings.Contains(host, ":") {
		host = "[" + host + "]"
	}
	if r.port != 80 {
		host += ":" + strconv.Itoa(r.port)
	}
	return "http://" + host + r.path
}

// proxyAuthorizationLocked is the Proxy-Authorization header an
// absolute-form request carries: the login answer, else the proxy URL's
// credentials; none if the caller set the header.
func (c *ClientRequest) proxyAuthorizationLocked() string {
	if c.r.target.Proxy == nil || c.r.protocol != "http:" || c.r.headers.Has("proxy-authorization") {
		return ""
	}
	if c.proxyAuth != "" {
		return c.proxyAuth
	}
	return agentpool.ProxyAuthorization(c.r.target.Proxy)
}
