package agentpool

import (
	"bufio"
	"context"
	"crypto/tls"
	"encoding/base64"
	"errors"
	"fmt"
	"io"
	"net"
	"net/url"
	"strconv"
	"strings"

	"github.com/httpgateway/httpgateway/internal/nodeerr"
	"github.com/httpgateway/httpgateway/internal/proxyenv"
)

// ProxyDecision is how one request leaves the agent: through URL, or
// direct when URL is nil. Rule is the NO_PROXY entry that sent it direct,
// "" when no entry did (no proxy configured for the protocol, no entry
// matched, or a unix socket).
type ProxyDecision struct {
	URL  *url.URL
	Rule string
}

// ProxyFor applies the agent's ProxyEnv to t (Node's proxyEnv agent
// option): the engine calls it before Acquire and copies URL into
// Target.Proxy, so that the request knows from its creation whether it is
// written in absolute-form. Unix-socket targets are never proxied, as in
// Node. A port of 0 is the protocol's default port for NO_PROXY matching.
// The URL is a copy the caller may keep.
func (a *Agent) ProxyFor(t Target) ProxyDecision {
	if t.SocketPath != "" || a.proxy == nil {
		return ProxyDecision{}
	}
	u, rule := a.proxy.ProxyFor(t.Protocol, t.Host, targetPort(t))
	if u != nil {
		c := *u
		u = &c
	}
	return ProxyDecision{URL: u, Rule: rule}
}

// targetPort is t.Port, or the protocol's default port when 0.
func targetPort(t Target) int {
	if t.Port != 0 {
		return t.Port
	}
	if t.Protocol == "https:" {
		return 443
	}
	return 80
}

// ProxyAuthorization returns the Proxy-Authorization value for the
// credentials of a proxy URL (`http://user:pass@proxy:3128`), Basic as
// Node sends it, or "" when the URL has none. The engine adds it to every
// absolute-form request it writes on a proxied http socket (unless it
// answers a login with its own value); the pool sends it on CONNECT
// unless Target.ProxyAuth is set.
func ProxyAuthorization(u *url.URL) string {
	if u == nil || u.User == nil {
		return ""
	}
	pass, _ := u.User.Password()
	return BasicAuthorization(u.User.Username(), pass)
}

// BasicAuthorization returns "Basic base64(user:pass)", the value for
// Target.ProxyAuth (and for the Proxy-Authorization header of an
// absolute-form request) once a login was answered.
func BasicAuthorization(user, pass string) string {
	return "Basic " + base64.StdEncoding.EncodeToString([]byte(user+":"+pass))
}

// ProxyAuthError is the dial error of a CONNECT the proxy answered with
// 407: what Electron's 'login' event reports (isProxy true, scheme, host,
// port, realm). It unwraps to an ERR_GATEWAY_PROXY_AUTH_REQUIRED
// *nodeerr.Error. The engine answers it by acquiring again with
// Target.ProxyAuth set (see BasicAuthorization).
type ProxyAuthError struct {
	// Scheme is the lower-case auth scheme of the challenge to answer
	// ("basic"): the first Basic challenge of Proxy-Authenticate, else the
	// first challenge; "" when the proxy sent none.
	Scheme string
	// Realm is that challenge's realm parameter.
	Realm string
	// Host and Port are the proxy's (Electron's authInfo names the
	// challenger).
	Host string
	Port int
	// StatusCode is 407.
	StatusCode int
	// CredentialsSent reports that the CONNECT carried Proxy-Authorization,
	// i.e. the proxy rejected those credentials.
	CredentialsSent bool
	// Challenges are the raw Proxy-Authenticate values.
	Challenges []string

	err *nodeerr.Error
}

func (e *ProxyAuthError) Error() string { return e.err.Error() }

// Unwrap returns the *nodeerr.Error carrying the code.
func (e *ProxyAuthError) Unwrap() error { return e.err }

// dialViaProxy connects to t.Proxy (TLS to it for an https proxy). For an
// http target that connection is the socket: it carries absolute-form
// requests. For an https target it sends CONNECT, and on a 2xx does TLS
// to the origin through the tunnel.
//
// The egress Check sees the proxy's addresses: the proxy is what is
// dialed. The origin behind it, which the proxy resolves, goes through
// Deps.CheckName: here, before anything is dialed, for a CONNECT target
// (the tunnel serves that one origin); per request for an http target
// (CheckOrigin, which the engine calls before each Acquire).
//
// The proxy connection is verified with the CA, rejectUnauthorized and
// min/max version of the TLS options that apply to the request (the
// merged agent and request options for https targets, the agent's
// Options.TLS for http targets), against the proxy's host name; no client
// certificate and no servername override are sent to the proxy: those
// options name the origin.
func (a *Agent) dialViaProxy(ctx context.Context, name string, t Target) (dialed, error) {
	if t.Protocol == "https:" {
		if err := a.checkOrigin(ctx, t); err != nil {
			return dialed{}, err
		}
	}
	phost, pport := proxyenv.HostPort(t.Proxy)
	pt := Target{Protocol: t.Proxy.Scheme + ":", Host: phost, Port: pport, LocalAddress: t.LocalAddress, Family: t.Family}
	raw, err := a.dialRaw(ctx, pt)
	if err != nil {
		return dialed{}, err
	}
	d := dialed{conn: raw}
	d.tcp, _ = raw.(*net.TCPConn)
	if t.Proxy.Scheme == "https" {
		cfg, err := a.proxyTLSConfig(name, t, phost)
		if err != nil {
			_ = raw.Close()
			return dialed{}, err
		}
		tc, info, err := handshake(ctx, raw, cfg, pt)
		if err != nil {
			return dialed{}, err
		}
		d.conn, d.proxyTLS = tc, info
	}
	if t.Protocol != "https:" {
		return d, nil
	}
	if err := connectTunnel(ctx, d.conn, t, phost, pport); err != nil {
		_ = d.conn.Close()
		return dialed{}, err
	}
	cfg, err := a.tlsConfig(name, t)
	if err != nil {
		_ = d.conn.Close()
		return dialed{}, err
	}
	tc, info, err := handshake(ctx, d.conn, cfg, t)
	if err != nil {
		return dialed{}, err
	}
	d.conn, d.tls = tc, info
	return d, nil
}

func (a *Agent) proxyTLSConfig(name string, t Target, proxyHost string) (*tls.Config, error) {
	key := "proxy\x00" + name
	return a.cachedTLSConfig(key, func() (*tls.Config, error) {
		src := t.TLS
		if t.Protocol != "https:" {
			src = a.opts.TLS
		}
		o := &TLSOptions{}
		if src != nil {
			o.CA, o.RejectUnauthorized, o.MinVersion, o.MaxVersion = src.CA, src.RejectUnauthorized, src.MinVersion, src.MaxVersion
		}
		return a.buildTLSConfig(key, Target{Protocol: "https:", Host: proxyHost, TLS: o})
	})
}

// connectTunnel sends CONNECT for t over conn and reads the proxy's
// answer. ctx cancellation (the socket destroyed, e.g. on the agent
// timeout) interrupts the exchange.
func connectTunnel(ctx context.Context, conn net.Conn, t Target, phost string, pport int) error {
	host := t.Host
	if host == "" {
		host = "localhost"
	}
	hp := net.JoinHostPort(host, strconv.Itoa(targetPort(t)))
	auth := t.ProxyAuth
	if auth == "" {
		auth = ProxyAuthorization(t.Proxy)
	}
	var b strings.Builder
	b.WriteString("CONNECT " + hp + " HTTP/1.1\r\nHost: " + hp + "\r\n")
	if auth != "" {
		b.WriteString("Proxy-Authorization: " + auth + "\r\n")
	}
	b.WriteString("\r\n")

	stop := context.AfterFunc(ctx, func() { _ = conn.SetDeadline(aLongTimeAgo) })
	defer stop()
	proxyAddr := net.JoinHostPort(phost, strconv.Itoa(pport))
	if _, err := io.WriteString(conn, b.String()); err != nil {
		if ctx.Err() != nil {
			return ctx.Err()
		}
		return classifyDial(err, phost, pport)
	}
	// The origin speaks only after our ClientHello, so a correct proxy has
	// sent nothing beyond the head when it is read: the reader may be
	// dropped afterwards, and Buffered() > 0 is a protocol error.
	br := bufio.NewReaderSize(conn, readBufSize)
	res, err := readConnectResponse(br)
	if err != nil {
		if ctx.Err() != nil {
			return ctx.Err()
		}
		var ne *nodeerr.Error
		if errors.As(err, &ne) {
			return err
		}
		if isEOF(err) {
			return &nodeerr.Error{Code: nodeerr.ECONNRESET,
				Message: fmt.Sprintf("proxy %s closed the connection before answering CONNECT %s", proxyAddr, hp), Err: err}
		}
		return classifyDial(err, phost, pport)
	}
	switch {
	case res.code >= 200 && res.code < 300:
		if br.Buffered() > 0 {
			return nodeerr.New(nodeerr.ERR_GATEWAY_PROXY_INVALID_RESPONSE,
				fmt.Sprintf("proxy %s sent data after its CONNECT %s response", proxyAddr, hp))
		}
		return nil
	case res.code == 407:
		scheme, realm := ParseProxyAuthenticate(res.authenticate)
		msg := fmt.Sprintf("proxy %s requires authentication for CONNECT %s (407 %s)", proxyAddr, hp, res.reason)
		if auth != "" {
			msg = fmt.Sprintf("proxy %s rejected the credentials for CONNECT %s (407 %s)", proxyAddr, hp, res.reason)
		}
		return &ProxyAuthError{Scheme: scheme, Realm: realm, Host: phost, Port: pport, StatusCode: res.code,
			CredentialsSent: auth != "", Challenges: res.authenticate,
			err: nodeerr.New(nodeerr.ERR_GATEWAY_PROXY_AUTH_REQUIRED, msg)}
	default:
		return nodeerr.New(nodeerr.ERR_GATEWAY_PROXY_CONNECT_FAILED,
			strings.TrimSpace(fmt.Sprintf("proxy %s refused CONNECT %s: %d %s", proxyAddr, hp, res.code, res.reason)))
	}
}

// redactedProxy is a proxy URL for names and logs: scheme, host and port,
// with the user name but never the password (url.URL.Redacted).
func redactedProxy(u *url.URL) string {
	return (&url.URL{Scheme: u.Scheme, User: u.User, Host: u.Host}).Redacted()
}

// proxyDisplay is a proxy URL without any credentials.
func proxyDisplay(u *url.URL) string {
	if u == nil {
		return ""
	}
	return (&url.URL{Scheme: u.Scheme, Host: u.Host}).String()
}
