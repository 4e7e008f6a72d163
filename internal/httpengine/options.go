package httpengine

import (
	"encoding/base64"
	"net"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/httpgateway/httpgateway/internal/agentpool"
	"github.com/httpgateway/httpgateway/internal/httpengine/wire"
	"github.com/httpgateway/httpgateway/internal/nodeerr"
)

// Options are the options of http.request(url, options). Zero values mean
// Node's defaults. When URL and the separate fields are both set, the fields
// win, as Node merges them.
type Options struct {
	URL         string
	Method      string // default "GET"; upper-cased as Node does
	Headers     []Header
	Protocol    string // "http:" (default) or "https:"
	Host        string // default "localhost"
	Hostname    string // wins over Host
	Port        int    // default DefaultPort, then 80/443
	DefaultPort int
	Path        string // default "/"
	Auth        string // "user:password" -> Basic Authorization unless one is set

	SocketPath   string
	LocalAddress string
	Family       int // 0, 4 or 6

	// Timeout is the socket idle timeout: a `timeout` event, nothing more.
	Timeout time.Duration
	// SetHost adds a Host header unless one is set; nil means true.
	SetHost *bool

	MaxHeaderSize        int // default 16 KiB
	MaxHeadersCount      int // default 2000
	InsecureHTTPParser   bool
	JoinDuplicateHeaders bool

	TLS *agentpool.TLSOptions

	// ChunkedEncoding forces chunked framing even when end() knows the whole
	// body (Electron's chunkedEncoding).
	ChunkedEncoding bool
	// ExpectContinueTimeout bounds the wait for 100 Continue after an
	// Expect: 100-continue head before the body goes anyway; default 1 s.
	ExpectContinueTimeout time.Duration

	// Redirect is the redirect mode (default manual: Node's behaviour).
	Redirect RedirectMode
	// MaxRedirects bounds the hops followed; 0 means 20.
	MaxRedirects int
	// RedirectDecisionTimeout bounds the wait for FollowRedirect in
	// deferred mode; 0 means 30 s. When it passes the request fails.
	RedirectDecisionTimeout time.Duration
	// MaxReplayBody bounds the body kept for a 307/308 replay; 0 means 4 MiB.
	MaxReplayBody int
	// LoginOnServerAuth raises 'login' for a 401 with WWW-Authenticate too
	// (a proxy's 407 always raises it). The wait for Login is bounded by
	// RedirectDecisionTimeout (default 30 s); when it passes the request
	// fails.
	LoginOnServerAuth bool

	// MaxDuration bounds the whole request, from creation to 'close': past
	// it the request fails with ETIMEDOUT, however slowly bytes trickle in
	// (a socket timeout only notices silence). 0 means no bound.
	MaxDuration time.Duration

	// ReuseBodyBuffers lets the event log give the read buffer behind a
	// 'data' event's Data back to the pool, for another response to read
	// into, once the event left the log (the retention bounds,
	// EventLog.DropDelivered) and no reader holds it. Readers then read
	// with EventLog.NextHeld and call EventLog.Done once they no longer
	// read the event's Data; an event read with plain Next keeps its
	// buffer from ever being reused (tests, or a reader that keeps
	// events). A large response read is handed to its event whole (no
	// copy); without reuse each one is a fresh 256 KiB allocation, cleared
	// by the runtime and collected later: about a sixth of the gateway's
	// CPU on a streamed download.
	ReuseBodyBuffers bool

	// Observer, if set, sees every event as it is emitted (tracing,
	// metrics, logs). See Observer for what it may do.
	Observer Observer
}

// Observer sees a request's events synchronously, in order, as they are
// emitted. OnEvent runs with the request's lock held: it must be quick,
// must not block, and must not call back into the ClientRequest. ev.Seq is
// set; ev.Data must not be kept (copy what is needed).
type Observer interface {
	OnEvent(ev Event)
}

// AttemptObserver is an Observer that also follows what events do not
// show: a new socket's dial, and the start of each attempt after the
// first. The engine calls it, like OnEvent, synchronously with the
// request's lock held, under the same rules.
type AttemptObserver interface {
	Observer
	// OnConnected is called when a socket the request got new (not from
	// the pool) has connected, TLS included, before anything is written
	// to it. info is the socket then: its peer address and, in info.Dial,
	// when each phase of the dial ran.
	OnConnected(info *agentpool.SocketInfo)
	// OnAttempt is called when the request starts another attempt (see
	// AttemptKind), before the attempt's head is rendered from h. The
	// observer may set trace context headers in h, and must change
	// nothing else. The first attempt has no OnAttempt: its headers are
	// Options.Headers.
	OnAttempt(kind AttemptKind, h *OutgoingHeaders)
}

// AttemptKind says why a request sends its head again.
type AttemptKind uint8

// The attempts after the first.
const (
	// AttemptRedirect is the next hop of a followed redirect, after its
	// 'redirect' event (in deferred mode, at FollowRedirect).
	AttemptRedirect AttemptKind = iota + 1
	// AttemptRetry re-sends an idempotent request on a fresh socket after
	// the reused one failed before any response byte (see
	// agentpool.Options.RetryReusedIdempotent).
	AttemptRetry
	// AttemptLogin re-sends the request with the credentials given to
	// Login, after its 'login' event.
	AttemptLogin
)

// Node's defaults.
const (
	DefaultMaxHeaderSize         = 16 * 1024
	DefaultMaxHeadersCount       = 2000
	DefaultExpectContinueTimeout = time.Second
)

// resolved is a request's options after merging, defaulting and validation.
type resolved struct {
	method   string
	protocol string
	host     string // host name or IP, no brackets
	port     int
	path     string
	target   agentpool.Target
	headers  OutgoingHeaders
	opts     Options
	// proxyRule is the NO_PROXY entry that sent the request direct, if any.
	proxyRule string
}

// methodsWithoutChunkedDefault are the methods for which Node does not use
// chunked encoding by default (useChunkedEncodingByDefault = false).
func chunkedByDefault(method string) bool {
	switch method {
	case "GET", "HEAD", "DELETE", "OPTIONS", "TRACE", "CONNECT":
		return false
	}
	return true
}

// resolve merges and validates o the way ClientRequest's constructor does,
// failing with the Node error the constructor would throw.
func resolve(o Options) (*resolved, error) {
	r := &resolved{opts: o}
	protocol, host, port, path, auth := "", "", 0, "", ""
	if o.URL != "" {
		u, err := url.Parse(o.URL)
		if err != nil || u.Scheme == "" || u.Host == "" {
			return nil, nodeerr.New(nodeerr.ERR_INVALID_URL, "Invalid URL")
		}
		protocol = strings.ToLower(u.Scheme) + ":"
		host = u.Hostname()
		if p := u.Port(); p != "" {
			n, err := strconv.Atoi(p)
			if err != nil || n < 0 || n > 65535 {
				return nil, nodeerr.New(nodeerr.ERR_INVALID_URL, "Invalid URL")
			}
			port = n
		}
		path = u.EscapedPath()
		if path == "" {
			path = "/"
		}
		if u.RawQuery != "" || u.ForceQuery {
			path += "?" + u.RawQuery
		}
		if u.User != nil {
			// Node decodes the URL's user info before building Basic auth.
			pw, _ := u.User.Password()
			auth = u.User.Username() + ":" + pw
		}
	}
	if o.Protocol != "" {
		protocol = o.Protocol
	}
	if protocol == "" {
		protocol = "http:"
	}
	if protocol != "http:" && protocol != "https:" {
		return nil, nodeerr.New(nodeerr.ERR_INVALID_PROTOCOL,
			`Protocol "`+protocol+`" not supported. Expected "http:" or "https:"`)
	}
	if o.Host != "" {
		host = o.Host
	}
	if o.Hostname != "" {
		host = o.Hostname
	}
	host = strings.TrimSuffix(strings.TrimPrefix(host, "["), "]")
	if host == "" {
		host = "localhost"
	}
	if strings.ContainsAny(host, " \t\r\n/\\?#@") {
		return nil, nodeerr.New(nodeerr.ERR_INVALID_ARG_VALUE, `The argument 'options.host' is invalid. Received '`+host+`'`)
	}
	defaultPort := o.DefaultPort
	if defaultPort == 0 {
		defaultPort = 80
		if protocol == "https:" {
			defaultPort = 443
		}
	}
	if o.Port != 0 {
		port = o.Port
	}
	if port == 0 {
		port = defaultPort
	}
	if port < 0 || port > 65535 {
		return nil, nodeerr.New(nodeerr.ERR_OUT_OF_RANGE, `The value of "options.port" is out of range. It must be >= 0 and <= 65535. Received `+strconv.Itoa(port))
	}
	if o.Path != "" {
		path = o.Path
	}
	if path == "" {
		path = "/"
	}
	if err := wire.ValidatePath(path); err != nil {
		return nil, err
	}
	if o.Auth != "" {
		auth = o.Auth
	}
	method := o.Method
	if method == "" {
		method = "GET"
	} else {
		if err := wire.ValidateMethod(method); err != nil {
			return nil, err
		}
		method = strings.ToUpper(method)
	}
	switch o.Family {
	case 0, 4, 6:
	default:
		return nil, nodeerr.New(nodeerr.ERR_INVALID_ARG_VALUE, `The property 'options.family' must be one of: 4, 6, 0. Received `+strconv.Itoa(o.Family))
	}
	if o.LocalAddress != "" && net.ParseIP(o.LocalAddress) == nil {
		return nil, nodeerr.New(nodeerr.ERR_INVALID_ARG_VALUE, `The argument 'options.localAddress' is invalid. Received '`+o.LocalAddress+`'`)
	}
	if o.Timeout < 0 || o.ExpectContinueTimeout < 0 || o.MaxDuration < 0 {
		return nil, nodeerr.New(nodeerr.ERR_OUT_OF_RANGE, "timeouts must not be negative")
	}
	if o.MaxHeaderSize < 0 || o.MaxHeadersCount < 0 {
		return nil, nodeerr.New(nodeerr.ERR_OUT_OF_RANGE, "maxHeaderSize and maxHeadersCount must not be negative")
	}

	for _, h := range o.Headers {
		if err := r.headers.Append(h.Name, h.Value); err != nil {
			return nil, err
		}
	}
	// Host, then Authorization, as the constructor adds them: visible to
	// getHeader, replaceable until the head goes out.
	if (o.SetHost == nil || *o.SetHost) && !r.headers.Has("host") {
		hh := host
		if strings.Contains(hh, ":") {
			hh = "[" + hh + "]"
		}
		if port != defaultPort {
			hh += ":" + strconv.Itoa(port)
		}
		if err := r.headers.Set("Host", hh); err != nil {
			return nil, err
		}
	}
	if auth != "" && !r.headers.Has("authorization") {
		if err := r.headers.Set("Authorization", "Basic "+base64.StdEncoding.EncodeToString([]byte(auth))); err != nil {
			return nil, err
		}
	}

	r.method, r.protocol, r.host, r.port, r.path = method, protocol, host, port, path
	r.target = agentpool.Target{
		Protocol:     protocol,
		Host:         host,
		Port:         port,
		LocalAddress: o.LocalAddress,
		Family:       o.Family,
		SocketPath:   o.SocketPath,
	}
	if protocol == "https:" {
		r.target.TLS = o.TLS
		if r.target.TLS == nil {
			r.target.TLS = &agentpool.TLSOptions{}
		}
	}
	if r.opts.MaxHeaderSize == 0 {
		r.opts.MaxHeaderSize = DefaultMaxHeaderSize
	}
	if r.opts.MaxHeadersCount == 0 {
		r.opts.MaxHeadersCount = DefaultMaxHeadersCount
	}
	if r.opts.ExpectContinueTimeout == 0 {
		r.opts.ExpectContinueTimeout = DefaultExpectContinueTimeout
	}
	return r, nil
}
