package httpengine

import (
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
