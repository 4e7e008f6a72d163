package agentpool

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"time"

	"github.com/httpgateway/httpgateway/internal/nodeerr"
)

// Resolver resolves host names; *net.Resolver satisfies it. Tests inject
// fakes.
type Resolver interface {
	LookupNetIP(ctx context.Context, network, host string) ([]netip.Addr, error)
}

// Deps is the dial machinery an Agent uses.
type Deps struct {
	// Resolver resolves host names; nil means net.DefaultResolver.
	Resolver Resolver
	// DNSTimeout bounds one resolution; a resolution that runs out is
	// EAI_AGAIN, as getaddrinfo reports a timeout. 0 means 10 s.
	DNSTimeout time.Duration
	// ConnectTimeout bounds each connect attempt; 0 leaves it to the OS,
	// as Node does.
	ConnectTimeout time.Duration
	// Check is the egress hook, called with every resolved address before
	// it is dialed; the address dialed is exactly the one checked, so DNS
	// rebinding cannot slip past it. A non-nil error denies that address;
	// when every address is denied the dial fails with the (first) denial,
	// as an *nodeerr.Error if it is one, else ERR_GATEWAY_EGRESS_DENIED.
	// nil allows everything.
	Check func(ctx context.Context, host string, addr netip.AddrPort) error
	// CheckSocketPath is the egress hook for unix sockets (Check only sees
	// IP addresses). nil allows everything.
	CheckSocketPath func(ctx context.Context, path string) error
	// CheckName is the egress hook for an origin behind a proxy, which the
	// proxy resolves and connects to, not the pool: a CONNECT tunnel's
	// target (checked in dialViaProxy) and every absolute-form request's
	// origin (CheckOrigin, per request, since those sockets are shared by
	// every origin). It gets the origin's host name or IP literal and port;
	// a non-nil error denies, reported as Check's are. nil allows every
	// origin; the proxy's own addresses still go through Check.
	CheckName func(ctx context.Context, host string, port uint16) error
}

const defaultDNSTimeout = 10 * time.Second

func (d Deps) withDefaults() Deps {
	if d.Resolver == nil {
		d.Resolver = net.DefaultResolver
	}
	if d.DNSTimeout <= 0 {
		d.DNSTimeout = defaultDNSTimeout
	}
	return d
}

// dialed is what a successful dial hands to the socket.
type dialed struct {
	conn     net.Conn     // the *tls.Conn for https
	tcp      *net.TCPConn // nil for unix sockets; the connection to the proxy for proxied sockets
	tls      *TLSInfo     // TLS with the origin
	proxyTLS *TLSInfo     // TLS with an https proxy
	timings  *DialTimings // never nil after a successful dial
}

// DialTimings are the moments of one socket's dial, for tracing (the
// wall clock, with its monotonic reading). A phase that did not happen
// has zero times: no DNS for an IP literal or a unix socket, no TLS for
// http. When a name resolves to several addresses, the connect phase runs
// from the first attempt to the one that succeeded. For a socket through
// a proxy the DNS and connect phases are the proxy's (its name, the TCP
// connection to it), and TLS is the last handshake: the origin's through
// a CONNECT tunnel, else the proxy's.
type DialTimings struct {
	DNSStart, DNSDone         time.Time
	ConnectStart, ConnectDone time.Time
	TLSStart, TLSDone         time.Time
}

// dialTimingsKey carries the *DialTimings a dial stamps, as
// net/http/httptrace carries a ClientTrace: every path of a dial (direct,
// through a proxy) stamps the phases it runs without passing the record
// down each call.
type dialTimingsKey struct{}

// dialTimingsOf returns the record the dial in ctx stamps, nil outside
// a socket's dial.
func dialTimingsOf(ctx context.Context) *DialTimings {
	dt, _ := ctx.Value(dialTimingsKey{}).(*DialTimings)
	return dt
}

// codeEINVAL is libuv's name for an invalid argument at connect time.
const codeEINVAL = "EINVAL"

// dial connects to t: resolve (with DNSTimeout), filter by family, check
// and dial each address in order until one connects (sequential fallback),
// then TLS for https. A target with a Proxy goes through it (see
// dialViaProxy). ctx is cancelled when the socket is destroyed. The
// phases are stamped on the DialTimings returned in dialed.timings.
func (a *Agent) dial(ctx context.Context, name string, t Target) (dialed, error) {
	dt := new(DialTimings)
	ctx = context.WithValue(ctx, dialTimingsKey{}, dt)
	d, err := a.dialTarget(ctx, name, t)
	if err == nil {
		d.timings = dt
	}
	return d, err
}

// dialTarget is dial without the timings record.
func (a *Agent) dialTarget(ctx context.Context, name string, t Target) (dialed, error) {
	if t.Proxy != nil && t.SocketPath == "" {
		return a.dialViaProxy(ctx, name, t)
	}
	var d dialed
	raw, err := a.dialRaw(ctx, t)
	if err != nil {
		return d, err
	}
	d.conn = raw
	if tc, ok := raw.(*net.TCPConn); ok {
		d.tcp = tc
	}
	if t.Protocol != "https:" {
		return d, nil
	}
	cfg, err := a.tlsConfig(name, t)
	if err != nil {
		_ = raw.Close()
		return dialed{}, err
	}
	tc, info, err := handshake(ctx, raw, cfg, t)
	if err != nil {
		return dialed{}, err
	}
	d.conn, d.tls = tc, info
	return d, nil
}

// handshake runs a TLS client handshake over raw, closing raw when it
// fails; the error carries Node's code for what failed (errTarget names
// the peer in it). A successful handshake is stamped on the dial's
// DialTimings, replacing an earlier one (the proxy's, before the
// origin's).
func handshake(ctx context.Context, raw net.Conn, cfg *tls.Config, errTarget Target) (*tls.Conn, *TLSInfo, error) {
	start := time.Now()
	tc := tls.Client(raw, cfg)
	if err := tc.HandshakeContext(ctx); err != nil {
		_ = raw.Close()
		return nil, nil, tlsError(err, cfg.ServerName, errTarget)
	}
	if dt := dialTimingsOf(ctx); dt != nil {
		dt.TLSStart, dt.TLSDone = start, time.Now()
	}
	return tc, tlsInfoOf(tc.ConnectionState()), nil
}

func (a *Agent) dialRaw(ctx context.Context, t Target) (net.Conn, error) {
	dialer := net.Dialer{
		// Node's sockets have no TCP keep-alive until keepSocketAlive turns
		// it on for free sockets; Go's default (15 s) would differ.
		KeepAlive: -1,
		Timeout:   a.deps.ConnectTimeout,
	}
	if t.SocketPath != "" {
		if chk := a.deps.CheckSocketPath; chk != nil {
			if err := chk(ctx, t.SocketPath); err != nil {
				return nil, denied(err, t.SocketPath, fmt.Sprintf("egress to unix socket %s denied", t.SocketPath), "", 0)
			}
		}
		dt := dialTimingsOf(ctx)
		if dt != nil {
			dt.ConnectStart = time.Now()
		}
		c, err := dialer.DialContext(ctx, "unix", t.SocketPath)
		if err != nil {
			return nil, classifyDial(err, t.SocketPath, 0)
		}
		if dt != nil {
			dt.ConnectDone = time.Now()
		}
		return c, nil
	}
	if t.LocalAddress != "" {
		ip, err := netip.ParseAddr(t.LocalAddress)
		if err != nil {
			return nil, nodeerr.New(nodeerr.ERR_INVALID_ARG_VALUE, fmt.Sprintf("Invalid IP address: %s", t.LocalAddress))
		}
		dialer.LocalAddr = net.TCPAddrFromAddrPort(netip.AddrPortFrom(ip, 0))
	}
	host := t.Host
	if host == "" {
		host = "localhost"
	}
	addrs, err := a.resolve(ctx, host, t.Family)
	if err != nil {
		return nil, err
	}
	dt := dialTimingsOf(ctx)
	var firstDenial, lastErr error
	for _, ip := range addrs {
		if ip.Is4In6() {
			ip = ip.Unmap()
		}
		ap := netip.AddrPortFrom(ip, uint16(t.Port))
		if chk := a.deps.Check; chk != nil {
			if err := chk(ctx, host, ap); err != nil {
				if firstDenial == nil {
					firstDenial = denied(err, host, fmt.Sprintf("egress to %s (%s) denied", host, ap), ip.String(), t.Port)
				}
				continue
			}
		}
		network := "tcp4"
		if ip.Is6() {
			network = "tcp6"
		}
		if dt != nil && dt.ConnectStart.IsZero() {
			dt.ConnectStart = time.Now()
		}
		c, err := dialer.DialContext(ctx, network, ap.String())
		if err == nil {
			if dt != nil {
				dt.ConnectDone = time.Now()
			}
			return c, nil
		}
		if ctx.Err() != nil {
			return nil, ctx.Err()
		}
		lastErr = classifyDial(err, ip.String(), t.Port)
	}
	if lastErr != nil {
		return nil, lastErr
	}
	return nil, firstDenial
}

// resolve returns the addresses to try, in the resolver's order.
func (a *Agent) resolve(ctx context.Context, host string, family int) ([]netip.Addr, error) {
	if ip, err := netip.ParseAddr(host); err == nil {
		// An IP literal is not looked up (net.connect skips lookup too).
		return []netip.Addr{ip}, nil
	}
	network := "ip"
	switch family {
	case 4:
		network = "ip4"
	case 6:
		network = "ip6"
	}
	rctx, cancel := context.WithTimeout(ctx, a.deps.DNSTimeout)
	defer cancel()
	dt := dialTimingsOf(ctx)
	if dt != nil {
		dt.DNSStart = time.Now()
	}
	addrs, err := a.deps.Resolver.LookupNetIP(rctx, network, host)
	if dt != nil {
		dt.DNSDone = time.Now()
	}
	if err != nil {
		if ctx.Err() != nil {
			return nil, ctx.Err()
		}
		if errors.Is(rctx.Err(), context.DeadlineExceeded) {
			return nil, &nodeerr.Error{Code: nodeerr.EAI_AGAIN, Syscall: "getaddrinfo", Address: host, Err: err}
		}
		var dnsErr *net.DNSError
		if errors.As(err, &dnsErr) {
			e := nodeerr.Classify(err, "getaddrinfo", host, 0)
			e.Address = host
			return nil, e
		}
		return nil, &nodeerr.Error{Code: nodeerr.ENOTFOUND, Syscall: "getaddrinfo", Address: host, Err: err}
	}
	out := addrs[:0:0]
	for _, ip := range addrs {
		u := ip.Unmap()
		if (family == 4 && !u.Is4()) || (family == 6 && u.Is4()) {
			continue
		}
		out = append(out, ip)
	}
	if len(out) == 0 {
		return nil, &nodeerr.Error{Code: nodeerr.ENOTFOUND, Syscall: "getaddrinfo", Address: host}
	}
	return out, nil
}

// denied turns a Check error into the dial error.
func denied(err error, host, msg, addr string, port int) error {
	if ne := nodeerr.As(err); ne != nil {
		return err
	}
	return &nodeerr.Error{Code: nodeerr.ERR_GATEWAY_EGRESS_DENIED, Message: msg + ": " + err.Error(),
		Address: addr, Port: port, Err: err}
}

func classifyDial(err error, addr string, port int) error {
	if ne := nodeerr.Classify(err, "connect", addr, port); ne != nil {
		return ne
	}
	return &nodeerr.Error{Code: codeEINVAL, Syscall: "connect", Address: addr, Port: port, Err: err}
}
