package httpengine

import (
	"bufio"
	"io"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/httpgateway/httpgateway/internal/httpengine/wire"
	"github.com/httpgateway/httpgateway/internal/nodeerr"
)

// RedirectMode chooses what a 3xx with a Location does.
type RedirectMode uint8

// The modes (DESIGN.md "Redirects, proxies, TLS").
const (
	// RedirectManual is Node's behaviour: the 3xx is the response.
	RedirectManual RedirectMode = iota
	// RedirectFollow follows up to MaxRedirects hops, fetch-style.
	RedirectFollow
	// RedirectError fails the request on a redirect.
	RedirectError
	// RedirectDeferred is Electron's manual mode: a 'redirect' event, then
	// FollowRedirect, an abort, or the decision timeout (which fails the
	// request: the documented default action).
	RedirectDeferred
)

// Redirect defaults.
const (
	DefaultMaxRedirects            = 20
	DefaultRedirectDecisionTimeout = 30 * time.Second
	// DefaultMaxReplayBody is how much request body is kept to replay on a
	// 307/308; a longer streamed body makes such a redirect fail.
	DefaultMaxReplayBody = 4 << 20
	// drainLimit is the most redirect-body bytes read to keep the socket.
	drainLimit = 64 << 10
)

// Codes for redirect failures (Node has none; Electron reports net errors).
const (
	ErrRedirectRefused       = "ERR_GATEWAY_REDIRECT_REFUSED"
	ErrTooManyRedirects      = "ERR_GATEWAY_TOO_MANY_REDIRECTS"
	ErrRedirectNotReplayable = "ERR_GATEWAY_REDIRECT_BODY_NOT_REPLAYABLE"
	ErrInvalidRedirect       = "ERR_GATEWAY_INVALID_REDIRECT"
	ErrRedirectTimeout       = "ERR_GATEWAY_REDIRECT_DECISION_TIMEOUT"
	ErrNoRedirectPending     = "ERR_GATEWAY_NO_REDIRECT_PENDING"
)

// RedirectInfo describes one redirect hop.
type RedirectInfo struct {
	StatusCode  int
	Method      string // the method the next request uses
	URL         string // the URL that answered with the redirect
	RedirectURL string // the absolute URL followed
	// Awaiting: the request waits for FollowRedirect (deferred mode).
	Awaiting bool
	// Head is the redirect response's head.
	Head *wire.ResponseHead
}

// pendingRedirect is a deferred redirect waiting for FollowRedirect.
type pendingRedirect struct {
	next  *resolved
	timer *time.Timer
}

func isRedirect(code int) bool {
	switch code {
	case 301, 302, 303, 307, 308:
		return true
	}
	return false
}

// currentURL renders the URL of the attempt in progress. In absolute-form
// that is the request-target, whose path may have been given as an
// absolute URL (checkProxiedPath).
func (r *resolved) currentURL() string {
	if r.absoluteForm() && !r.asteriskForm() {
		return r.requestTarget()
	}
	host := r.host
	if strings.Contains(host, ":") {
		host = "[" + host + "]"
	}
	def := 80
	if r.protocol == "https:" {
		def = 443
	}
	if r.port != def {
		host += ":" + strconv.Itoa(r.port)
	}
	return r.protocol + "//" + host + r.path
}

func headerValue(h *wire.ResponseHead, lower string) (string, bool) {
	for _, rh := range h.RawHeaders {
		if equalFoldASCII(rh.Name, lower) {
			return rh.Value, true
		}
	}
	return "", false
}

// recordReplayLocked keeps a copy of body bytes for a 307/308 replay while
// the redirect mode may need them and the bound allows.
func (c *ClientRequest) recordReplayLocked(p []byte) {
	if !c.replayable || !c.mayResendLocked() {
		return
	}
	limit := c.r.opts.MaxReplayBody
	if limit == 0 {
		limit = DefaultMaxReplayBody
	}
	if c.replayBytes+len(p) > limit {
		c.replayable, c.replay = false, nil
		return
	}
	c.replay = append(c.replay, append([]byte(nil), p...))
	c.replayBytes += len(p)
}

// mayResendLocked reports whether the request may have to be sent again:
// to follow a redirect, or after a 'login' (a proxy that may answer 407, or
// a 401 the request opted into answering).
func (c *ClientRequest) mayResendLocked() bool {
	o := c.r.opts
	return o.Redirect == RedirectFollow || o.Redirect == RedirectDeferred ||
		o.LoginOnServerAuth || c.r.target.Proxy != nil
}

// handleRedirect runs on the socket goroutine for a 3xx with a Location in a
// mode other than manual. It reports whether it took the response over.
func (c *ClientRequest) handleRedirect(head *wire.ResponseHead, br *bufio.Reader, framing wire.Framing) bool {
	loc, ok := headerValue(head, "location")
	if !ok {
		return false
	}
	c.mu.Lock()
	mode := c.r.opts.Redirect
	cur := c.r.currentURL()
	c.mu.Unlock()

	// Drain a small body so the socket can serve the next hop.
	reusable := head.KeepAlive(framing) && drain(br, framing)

	c.mu.Lock()
	if c.destroyed || c.phase == phaseClosed {
		c.mu.Unlock()
		return true
	}
	fail := func(code, msg string) bool {
		c.mu.Unlock()
		c.fail(nodeerr.New(code, msg), false)
		return true
	}
	base, _ := url.Parse(cur)
	ref, err := url.Parse(strings.TrimSpace(loc))
	if err != nil {
		return fail(ErrInvalidRedirect, "invalid Location header: "+loc)
	}
	next := base.ResolveReference(ref)
	if next.Scheme != "http" && next.Scheme != "https" {
		return fail(ErrInvalidRedirect, "redirect to unsupported scheme: "+next.Scheme)
	}
	if mode == RedirectError {
		return fail(ErrRedirectRefused, "redirect to "+next.Redacted()+" refused: redirect mode is error")
	}
	max := c.r.opts.MaxRedirects
	if max == 0 {
		max = DefaultMaxRedirects
	}
	if len(c.redirects) >= max {
		return fail(ErrTooManyRedirects, "maximum redirect reached ("+strconv.Itoa(max)+")")
	}
	nr, keepBody, err := c.nextAttemptLocked(head.StatusCode, next, base)
	if err != nil {
		c.mu.Unlock()
		c.fail(nodeerr.As(err), false)
		return true
	}
	if keepBody && (!c.replayable || c.bodyQueued > uint64(c.replayBytes)) {
		return fail(ErrRedirectNotReplayable, "the request body was streamed and cannot be replayed for a "+strconv.Itoa(head.StatusCode)+" redirect")
	}
	hop := RedirectInfo{StatusCode: head.StatusCode, Method: nr.method, URL: cur, RedirectURL: next.String(),
		Awaiting: mode == RedirectDeferred, Head: head}
	c.redirects = append(c.redirects, hop)
	c.settleFinishLocked()
	c.emitLocked(Event{Kind: EventRedirect, Target: TargetRequest, Redirect: &hop})

	// The old socket: back to the pool if drained and the write is done.
	if s := c.sock; s != nil {
		if c.flushing || !c.finished {
			reusable = false
		}
		s.Release(reusable && c.shouldKeepAliveLocked(), head.KeepAliveTimeout)
	}
	c.dropBody = !keepBody
	if mode == RedirectDeferred {
		c.resetAttemptLocked()
		p := &pendingRedirect{next: nr}
		timeout := c.r.opts.RedirectDecisionTimeout
		if timeout == 0 {
			timeout = DefaultRedirectDecisionTimeout
		}
		p.timer = time.AfterFunc(timeout, func() {
			c.fail(nodeerr.New(ErrRedirectTimeout, "no FollowRedirect within "+timeout.String()), false)
		})
		c.pendingRedirect = p
		c.mu.Unlock()
		return true
	}
	c.startAttemptLocked(nr, keepBody, AttemptRedirect)
	c.mu.Unlock()
	c.acquire()
	return true
}

// FollowRedirect is Electron's request.followRedirect(): it continues a
// deferred redirect.
func (c *ClientRequest) FollowRedirect() error {
	c.mu.Lock()
	p := c.pendingRedirect
	if p == nil || c.destroyed || c.phase == phaseClosed {
		c.mu.Unlock()
		return nodeerr.New(ErrNoRedirectPending, "no redirect is waiting for followRedirect()")
	}
	c.pendingRedirect = nil
	p.timer.Stop()
	c.startAttemptLocked(p.next, !c.dropBody, AttemptRedirect)
	c.mu.Unlock()
	c.acquire()
	return nil
}

// acquire asks the agent for a socket for the current attempt (see
// acquireFor). Never called with mu held: the pool may call back at once.
func (c *ClientRequest) acquire() {
	c.mu.Lock()
	r := c.r
	c.mu.Unlock()
	c.acquireFor(r)
}

// nextAttemptLocked builds the next hop's options the fetch way: 301/302
// turn POST into GET, 303 turns everything but HEAD into GET, both without
// a body; 307/308 keep method and body. Credentials are dropped when the
// origin changes.
func (c *ClientRequest) nextAttemptLocked(status int, next, base *url.URL) (*resolved, bool, error) {
	o := c.r.opts
	method, keepBody := c.r.method, true
	switch {
	case (status == 301 || status == 302) && method == "POST",
		status == 303 && method != "HEAD" && method != "GET":
		method, keepBody = "GET", false
	case status == 303:
		keepBody = false
	}
	crossOrigin := !strings.EqualFold(next.Scheme, base.Scheme) || !strings.EqualFold(next.Host, base.Host)
	var hs []Header
	for _, h := range c.r.headers.Lines() {
		switch strings.ToLower(h.Name) {
		case "host":
			continue // recomputed for the new target
		case "authorization", "cookie", "proxy-authorization":
			if crossOrigin {
				continue
			}
		case "content-length", "content-type", "content-encoding", "content-language", "content-location", "transfer-encoding":
			if !keepBody {
				continue
			}
		}
		hs = append(hs, h)
	}
	o.URL, o.Method, o.Headers = next.String(), method, hs
	o.Protocol, o.Host, o.Hostname, o.Port, o.DefaultPort, o.Path, o.Auth = "", "", "", 0, 0, "", ""
	if next.User != nil && crossOrigin {
		// userinfo in a Location is used as given; nothing to drop.
	}
	nr, err := resolve(o)
	if err == nil {
		err = c.applyProxy(nr)
	}
	return nr, keepBody, err
}

// resetAttemptLocked forgets the socket and response of the attempt that
// just ended, so that nothing of it can be released or emitted twice.
func (c *ClientRequest) resetAttemptLocked() {
	c.attemptGen++
	c.phase = phaseWaiting
	c.want, c.sock, c.conn, c.reused = nil, nil, nil, false
	c.resHead, c.resComplete, c.resKeepAlive, c.resBytes = nil, false, false, 0
	c.expectWait = false
	if c.expectTimer != nil {
		c.expectTimer.Stop()
		c.expectTimer = nil
	}
}

// startAttemptLocked prepares a new attempt with options nr: the head is
// rendered again for the new target and, with keepBody, the body seen so far
// is queued again (replayed); later writes follow as usual. An
// AttemptObserver hears of it (kind) before the head is rendered, so that
// the attempt carries its own trace context. Callers then call acquire
// without mu.
func (c *ClientRequest) startAttemptLocked(nr *resolved, keepBody bool, kind AttemptKind) {
	c.resetAttemptLocked()
	c.r = nr
	if ao, ok := nr.opts.Observer.(AttemptObserver); ok {
		ao.OnAttempt(kind, &nr.headers)
	}
	c.headersSent, c.head, c.chunked, c.contentLength = false, nil, false, -1
	c.finished, c.bodySent = false, 0
	c.pend, c.pendBytes = nil, 0
	c.flushedGen = c.pendGen // nothing of the old attempt is pending
	c.returnBorrowedLocked() // the replay holds copies
	c.writeErr = nil
	var body [][]byte
	if keepBody {
		body = c.replay
	} else {
		c.replay, c.replayBytes = nil, 0
	}
	total := 0
	for _, b := range body {
		total += len(b)
	}
	c.bodyQueued = uint64(total)
	_ = c.renderHeadLocked(c.ended) // validated before; cannot fail now
	c.bodyQueued = 0
	for _, b := range body {
		c.queueFramedLocked(b)
	}
	if c.ended && c.chunked {
		c.queueLocked([]byte(wire.LastChunk))
	}
}

// drain reads and discards a redirect's body if it is small, reporting
// whether the body ended cleanly (so the socket can be reused).
func drain(br *bufio.Reader, f wire.Framing) bool {
	switch f.Kind {
	case wire.FramingNone:
		return true
	case wire.FramingUntilClose:
		return false
	case wire.FramingLength:
		if f.Length > drainLimit {
			return false
		}
	}
	body := wire.NewBodyReader(br, f, wire.ParseOptions{})
	n, err := io.Copy(io.Discard, io.LimitReader(body, drainLimit+1))
	return err == nil && n <= drainLimit && body.Complete()
}
