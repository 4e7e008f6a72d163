package httpengine

import (
	"context"
	"strconv"
	"strings"
	"sync/atomic"

	"github.com/httpgateway/httpgateway/internal/agentpool"
	"github.com/httpgateway/httpgateway/internal/nodeerr"
)

// applyProxy asks the agent whether the request goes through a proxy (its
// proxyEnv and NO_PROXY) and records the decision on r.target, so that the
// head is rendered in the right form and the pool dials the right way.
// Called at creation and for every redirect hop. For a request in
// absolute-form it fails as Node's ClientRequest constructor throws when
// the path cannot follow the origin unambiguously (checkProxiedPath).
func (c *ClientRequest) applyProxy(r *resolved) error {
	d := c.agent.ProxyFor(r.target)
	r.target.Proxy = d.URL
	r.proxyRule = d.Rule
	if c.proxyAuth != "" {
		r.target.ProxyAuth = c.proxyAuth
	}
	if r.absoluteForm() {
		return r.checkProxiedPath()
	}
	return nil
}

// absoluteForm reports whether the request is written in absolute-form:
// an http request through a proxy (RFC 9112 section 3.2.2), which the
// proxy forwards to the origin the request-target names.
func (r *resolved) absoluteForm() bool {
	return r.target.Proxy != nil && r.protocol == "http:"
}

// asteriskForm reports whether the request is an OPTIONS * (RFC 9112
// section 3.2.4), which stays "*" through a proxy, as in Node: it asks the
// proxy itself and names no origin.
func (r *resolved) asteriskForm() bool {
	return r.method == "OPTIONS" && r.path == "*"
}

// authority is the origin as an http request-target and the Host header
// name it: the host (an IPv6 literal in brackets), then ":port" unless the
// port is 80.
func (r *resolved) authority() string {
	host := r.host
	if strings.Contains(host, ":") {
		host = "[" + host + "]"
	}
	if r.port != 80 {
		host += ":" + strconv.Itoa(r.port)
	}
	return host
}

// checkProxiedPath is Node's check of options.path for a request its proxy
// support rewrites to absolute-form (validateRequestAuthority in
// lib/_http_client.js, nodejs/node#64108), so that the request-target
// names the origin of options.host and options.port and no other: the
// path starts with "/" (or is the "*" of an OPTIONS), or it is itself an
// absolute http URL with that authority and no userinfo. Anything else
// throws ERR_INVALID_ARG_VALUE with Node's wording. Without it, a path
// such as "@10.1.2.3/x" or ":6379/x" appended to "http://host" would give
// the proxy another host or port than the one the egress policy checked.
//
// Node lets CONNECT through untouched; here CONNECT is held to the same
// rule, because its authority-form target would make the proxy open a
// tunnel to an origin nobody checked.
func (r *resolved) checkProxiedPath() error {
	p := r.path
	if strings.HasPrefix(p, "/") || r.asteriskForm() {
		return nil
	}
	scheme, after, ok := cutScheme(p)
	if !ok {
		return invalidPath(p, "must be in absolute-form or start with /")
	}
	auth, rest, slashes := splitAuthority(after)
	if i := strings.LastIndexByte(auth, '@'); slashes && i >= 0 {
		// Node shows the URL without its userinfo; so do we, it may be
		// credentials.
		return invalidPath(scheme+"://"+auth[i+1:]+rest, "must not contain userinfo, use options.auth instead")
	}
	if !equalFoldASCII(scheme, "http") {
		return invalidPath(strings.ToLower(scheme)+":", "must use http: scheme when specified as an absolute URL")
	}
	want := r.authority()
	if !slashes || (!equalFoldASCII(auth, want) && (r.port != 80 || !equalFoldASCII(auth, want+":80"))) {
		return invalidPath(p, "must match the request authority ("+want+")")
	}
	return nil
}

func invalidPath(received, reason string) error {
	return nodeerr.New(nodeerr.ERR_INVALID_ARG_VALUE, "The argument 'options.path' "+reason+". Received '"+received+"'")
}

// cutScheme splits an absolute URL at the colon after its scheme (RFC
// 3986: a letter, then letters, digits, "+", "-" or "."). ok is false when
// s does not start with a scheme.
func cutScheme(s string) (scheme, after string, ok bool) {
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case 'a' <= c && c <= 'z', 'A' <= c && c <= 'Z':
		case i > 0 && ('0' <= c && c <= '9' || c == '+' || c == '-' || c == '.'):
		case i > 0 && c == ':':
			return s[:i], s[i+1:], true
		default:
			return "", "", false
		}
	}
	return "", "", false
}

// splitAuthority splits what follows an absolute URL's scheme into the
// authority and the rest (from the first "/", "?", "#" or "\", which WHATWG
// URL parsers also end an http authority at). slashes is false when there
// is no "//", hence no authority.
func splitAuthority(after string) (auth, rest string, slashes bool) {
	after, slashes = strings.CutPrefix(after, "//")
	if !slashes {
		return "", after, false
	}
	if i := strings.IndexAny(after, "/?#\\"); i >= 0 {
		return after[:i], after[i:], true
	}
	return after, "", true
}

// requestTarget is the request-target of the head: origin-form, or
// absolute-form for an http request through a proxy (RFC 9112 section
// 3.2.2), which the proxy forwards. In absolute-form it is always
// "http://" + authority + a path starting with "/", the authority being
// the one the egress check was given (checkProxiedPath refused any path
// that could change it; an absolute URL path keeps only what follows its
// own authority). The pool checks that again (Agent.CheckOrigin) before
// the request gets a socket.
func (r *resolved) requestTarget() string {
	if !r.absoluteForm() || r.asteriskForm() {
		return r.path
	}
	path := r.path
	if !strings.HasPrefix(path, "/") {
		if _, after, ok := cutScheme(path); ok {
			_, path, _ = splitAuthority(after)
		}
		if !strings.HasPrefix(path, "/") {
			path = "/" + path
		}
	}
	return "http://" + r.authority() + path
}

// acquireFor asks the agent for a socket for the attempt r, after the
// egress check of the origin behind a proxy that an absolute-form request
// needs per request (agentpool.Agent.CheckOrigin; every other target is
// checked when dialed). Never called with mu held: the pool may call back.
//
// When that check may take time (the agent's CheckName resolves the origin,
// up to its DNS timeout), the check and the Acquire run on a goroutine of
// their own, with a context cancelled when the request ends (lifeContext).
// The callers cannot wait: Request, FollowRedirect and Login run on the
// caller's goroutine, which has to get the request back to be able to
// cancel it, and a redirect hop or a retry starts on the goroutine of the
// previous socket, which was released to the pool and may already be
// serving another request. The goroutine ends when the check has answered
// and the Acquire (which never blocks) returned. Every other target is
// acquired inline, as before: no goroutine, no allocation.
func (c *ClientRequest) acquireFor(r *resolved) {
	if !c.agent.OriginCheckMayBlock(r.target) {
		c.checkAndAcquire(context.Background(), r, nil)
		return
	}
	ctx := c.lifeContext()
	hook := testHookOriginChecked.Load()
	var acquired func()
	if h := testHookAcquired.Load(); h != nil {
		acquired = *h
	}
	go func() {
		c.checkAndAcquire(ctx, r, acquired)
		if hook != nil {
			(*hook)()
		}
	}()
}

// testHookOriginChecked is set by tests only: the goroutines acquireFor
// starts while it is set run it once they did their work.
var testHookOriginChecked atomic.Pointer[func()]

// testHookAcquired is set by tests only: the goroutines acquireFor starts
// while it is set run it between Acquire's return and taking the
// request's lock, where a newer attempt may overtake them.
var testHookAcquired atomic.Pointer[func()]

// checkAndAcquire runs the origin check of r and, if the request is still
// live, asks the pool for a socket. A denied origin fails the request
// before any socket: 'error', 'close', and no want. A request that ended
// while the check ran (destroyed, aborted, timed out) gets nothing from the
// pool: its teardown found no want to cancel, so nothing else would stop a
// proxy dial that nobody waits for.
func (c *ClientRequest) checkAndAcquire(ctx context.Context, r *resolved, acquired func()) {
	if err := c.agent.CheckOrigin(ctx, r.target, r.requestTarget()); err != nil {
		c.fail(classify(err, r), false)
		return
	}
	c.mu.Lock()
	if c.destroyed || c.phase == phaseClosed {
		c.mu.Unlock()
		return
	}
	gen := c.attemptGen
	c.mu.Unlock()
	want := c.agent.Acquire(r.target, exchange{c})
	if acquired != nil {
		acquired()
	}
	c.mu.Lock()
	// A newer attempt began while Acquire ran (this one's socket came,
	// answered with a redirect or a challenge, and the next hop asked for
	// its own): its want is the one teardown must find.
	stale := c.attemptGen != gen
	if !stale {
		c.want = want
	}
	// Ended while Acquire ran: teardown saw no want. A socket that was
	// assigned meanwhile is destroyed by OnSocket; a queued want is
	// withdrawn here.
	late := c.destroyed && c.sock == nil
	c.mu.Unlock()
	if late || stale {
		want.Cancel() // a no-op for a want that already got its socket
	}
}

// lifeContext returns a context cancelled when the request ends
// (finishLocked), made on first use: only requests whose origin check may
// block pay for it.
func (c *ClientRequest) lifeContext() context.Context {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.lifeCancel == nil {
		c.life, c.lifeCancel = context.WithCancel(context.Background())
		if c.phase == phaseClosed {
			c.lifeCancel()
		}
	}
	return c.life
}

// proxyAuthorizationLocked is the Proxy-Authorization header an
// absolute-form request carries: the login answer, else the proxy URL's
// credentials; none if the caller set the header.
func (c *ClientRequest) proxyAuthorizationLocked() string {
	if !c.r.absoluteForm() || c.r.headers.Has("proxy-authorization") {
		return ""
	}
	if c.proxyAuth != "" {
		return c.proxyAuth
	}
	return agentpool.ProxyAuthorization(c.r.target.Proxy)
}
