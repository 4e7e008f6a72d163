package httpengine

import (
	"bufio"
	"errors"
	"strconv"
	"time"

	"github.com/httpgateway/httpgateway/internal/agentpool"
	"github.com/httpgateway/httpgateway/internal/httpengine/wire"
	"github.com/httpgateway/httpgateway/internal/nodeerr"
)

// Codes of the login flow (Electron reports net errors; Node has none).
const (
	ErrLoginCancelled   = "ERR_GATEWAY_LOGIN_CANCELLED"
	ErrLoginTimeout     = "ERR_GATEWAY_LOGIN_TIMEOUT"
	ErrNoLoginPending   = "ERR_GATEWAY_NO_LOGIN_PENDING"
	ErrTooManyLogins    = "ERR_GATEWAY_TOO_MANY_LOGIN_ATTEMPTS"
	maxLoginAttempts    = 3
	defaultLoginTimeout = 30 * time.Second
)

// LoginInfo is Electron's authInfo of a 'login' event.
type LoginInfo struct {
	IsProxy bool
	Scheme  string // lower-case, e.g. "basic"
	Host    string
	Port    int
	Realm   string
}

// pendingLogin is a 'login' waiting for Login.
type pendingLogin struct {
	info  LoginInfo
	timer *time.Timer
}

// loginChallenge raises 'login' for a proxy or server that asked for
// credentials, and makes the request wait for Login (or an abort, or the
// timeout, which fails it). Called with mu held; the socket of the attempt
// is already released or destroyed.
func (c *ClientRequest) loginChallengeLocked(info LoginInfo) {
	c.loginAttempts++
	if c.loginAttempts > maxLoginAttempts {
		c.failLocked(nodeerr.New(ErrTooManyLogins, "credentials refused "+strconv.Itoa(maxLoginAttempts)+" times"))
		return
	}
	c.resetAttemptLocked()
	timeout := c.r.opts.RedirectDecisionTimeout
	if timeout == 0 {
		timeout = defaultLoginTimeout
	}
	p := &pendingLogin{info: info}
	p.timer = time.AfterFunc(timeout, func() {
		c.fail(nodeerr.New(ErrLoginTimeout, "no Login within "+timeout.String()), false)
	})
	c.pendingLogin = p
	c.emitLocked(Event{Kind: EventLogin, Target: TargetRequest, Login: &info})
}

// Login answers a 'login' event, like the callback of Electron's 'login':
// the request is sent again with Basic credentials. Empty credentials
// cancel the request with ERR_GATEWAY_LOGIN_CANCELLED, as Electron cancels
// it with an authentication error.
func (c *ClientRequest) Login(username, password string) error {
	c.mu.Lock()
	p := c.pendingLogin
	if p == nil || c.destroyed || c.phase == phaseClosed {
		c.mu.Unlock()
		return nodeerr.New(ErrNoLoginPending, "no login event is waiting for credentials")
	}
	c.pendingLogin = nil
	p.timer.Stop()
	if username == "" && password == "" {
		c.failLocked(nodeerr.New(ErrLoginCancelled, "authentication cancelled: empty credentials"))
		c.mu.Unlock()
		return nil
	}
	auth := agentpool.BasicAuthorization(username, password)
	nr := *c.r
	nr.headers = OutgoingHeaders{entries: append([]outHeader(nil), c.r.headers.entries...)}
	if p.info.IsProxy {
		c.proxyAuth = auth
		nr.target.ProxyAuth = auth // CONNECT carries it; absolute-form gets a header
	} else {
		_ = nr.headers.Set("Authorization", auth)
	}
	c.startAttemptLocked(&nr, true, AttemptLogin)
	c.mu.Unlock()
	c.acquire()
	return nil
}

// failLocked is fail for callers holding mu: the events are emitted now,
// the socket (if any) is destroyed without mu.
func (c *ClientRequest) failLocked(err *nodeerr.Error) {
	sock := c.sock
	c.sock = nil
	c.mu.Unlock()
	if sock != nil {
		sock.Destroy(err)
	}
	c.fail(err, false)
	c.mu.Lock()
}

// proxyLoginFromDial turns a CONNECT 407 into a 'login' event. It reports
// whether it did.
func (c *ClientRequest) proxyLoginFromDial(err error) bool {
	var pe *agentpool.ProxyAuthError
	if !errors.As(err, &pe) {
		return false
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.destroyed || c.phase == phaseClosed {
		return true
	}
	c.loginChallengeLocked(LoginInfo{IsProxy: true, Scheme: pe.Scheme, Host: pe.Host, Port: pe.Port, Realm: pe.Realm})
	return true
}

// authChallenge handles a 407 from the proxy of an absolute-form request,
// or a 401 when the request opted into server logins: the body is drained,
// the socket released, and 'login' raised. It reports whether it took the
// response over.
func (c *ClientRequest) authChallenge(head *wire.ResponseHead, br *bufio.Reader, framing wire.Framing) bool {
	c.mu.Lock()
	proxied := c.r.target.Proxy != nil && c.r.protocol == "http:"
	isProxy := head.StatusCode == 407 && proxied
	isServer := head.StatusCode == 401 && c.r.opts.LoginOnServerAuth
	c.mu.Unlock()
	if !isProxy && !isServer {
		return false
	}
	challengeHeader := "www-authenticate"
	if isProxy {
		challengeHeader = "proxy-authenticate"
	}
	var challenges []string
	for _, h := range head.RawHeaders {
		if equalFoldASCII(h.Name, challengeHeader) {
			challenges = append(challenges, h.Value)
		}
	}
	if len(challenges) == 0 {
		return false
	}
	scheme, realm := agentpool.ParseProxyAuthenticate(challenges)
	reusable := head.KeepAlive(framing) && drain(br, framing)

	c.mu.Lock()
	defer c.mu.Unlock()
	if c.destroyed || c.phase == phaseClosed {
		return true
	}
	info := LoginInfo{IsProxy: isProxy, Scheme: scheme, Realm: realm, Host: c.r.host, Port: c.r.port}
	if isProxy {
		info.Host = c.r.target.Proxy.Hostname()
		info.Port, _ = strconv.Atoi(c.r.target.Proxy.Port())
	}
	c.settleFinishLocked()
	if s := c.sock; s != nil {
		s.Release(reusable && !c.flushing && c.finished && c.shouldKeepAliveLocked(), head.KeepAliveTimeout)
	}
	c.loginChallengeLocked(info)
	return true
}
