package agentpool

import (
	"fmt"
	"net/url"
	"strconv"
	"strings"

	"github.com/httpgateway/httpgateway/internal/nodeerr"
	"github.com/httpgateway/httpgateway/internal/proxyenv"
)

// Target is where one request goes: the options of http.request() that
// decide which socket it may use.
type Target struct {
	// Protocol is "http:" or "https:".
	Protocol string
	// Host is a host name or an IP literal without brackets; empty means
	// "localhost", as in Node.
	Host string
	// Port is the remote port.
	Port int
	// LocalAddress is the local IP to bind, empty for any.
	LocalAddress string
	// Family restricts resolution to IPv4 (4) or IPv6 (6); 0 takes both.
	Family int
	// SocketPath dials a unix socket; Host and Port then only name the
	// request (and TLS's server name).
	SocketPath string
	// TLS are the https options; nil means Node's defaults.
	TLS *TLSOptions
	// Proxy is the proxy the request goes through, nil for direct: the
	// engine sets it from Agent.ProxyFor before Acquire. An http target's
	// socket is a connection to the proxy carrying absolute-form requests
	// (`GET http://host:port/path HTTP/1.1`, which the engine writes, with
	// Proxy-Authorization); an https target's socket is a CONNECT tunnel
	// with TLS to the origin, ready for origin-form requests. The scheme
	// must be http or https. Ignored for unix sockets.
	Proxy *url.URL
	// ProxyAuth is the Proxy-Authorization value sent on CONNECT, set by
	// the engine when it retries after a login (see ProxyAuthError and
	// BasicAuthorization); "" sends the Proxy URL's credentials, if any.
	// It is not part of the agent name: a tunnel the proxy accepted may
	// serve later requests of the same name.
	ProxyAuth string
}

// TLSOptions are the TLS options of https.request() the gateway supports.
// ALPN is always http/1.1.
type TLSOptions struct {
	// CA replaces the system roots with these PEM certificates.
	CA []byte
	// Cert and Key are a PEM client certificate and its key.
	Cert, Key []byte
	// Ciphers is an OpenSSL cipher list ("ECDHE-RSA-AES128-GCM-SHA256:...");
	// IANA names are accepted too. TLS 1.3 suites cannot be restricted in Go
	// and are accepted and ignored.
	Ciphers string
	// ServerName is the SNI and verification name; empty means Host.
	ServerName string
	// RejectUnauthorized verifies the peer; nil means Node's default, true.
	RejectUnauthorized *bool
	// MinVersion and MaxVersion: "TLSv1", "TLSv1.1", "TLSv1.2", "TLSv1.3".
	MinVersion, MaxVersion string
}

func (o *TLSOptions) validate() error {
	for _, v := range []struct{ name, val string }{{"minVersion", o.MinVersion}, {"maxVersion", o.MaxVersion}} {
		if _, err := tlsVersion(v.name, v.val); err != nil {
			return err
		}
	}
	if _, err := cipherSuites(o.Ciphers); err != nil {
		return err
	}
	return nil
}

// mergeTLS returns req overlaid with agent, agent winning for every field it
// sets, as Node's addRequest spreads the agent's options last.
func mergeTLS(req, agent *TLSOptions) *TLSOptions {
	if agent == nil {
		return req
	}
	if req == nil {
		c := *agent
		return &c
	}
	m := *req
	if agent.CA != nil {
		m.CA = agent.CA
	}
	if agent.Cert != nil {
		m.Cert = agent.Cert
	}
	if agent.Key != nil {
		m.Key = agent.Key
	}
	if agent.Ciphers != "" {
		m.Ciphers = agent.Ciphers
	}
	if agent.ServerName != "" {
		m.ServerName = agent.ServerName
	}
	if agent.RejectUnauthorized != nil {
		m.RejectUnauthorized = agent.RejectUnauthorized
	}
	if agent.MinVersion != "" {
		m.MinVersion = agent.MinVersion
	}
	if agent.MaxVersion != "" {
		m.MaxVersion = agent.MaxVersion
	}
	return &m
}

// effectiveTarget applies the agent's TLS options to an https target and
// drops the proxy of a unix-socket target (Node: "If the request is made
// to a Unix domain socket, the proxy settings will be ignored").
func (a *Agent) effectiveTarget(t Target) Target {
	if t.Protocol == "https:" {
		t.TLS = mergeTLS(t.TLS, a.opts.TLS)
	} else {
		t.TLS = nil
	}
	if t.SocketPath != "" {
		t.Proxy, t.ProxyAuth = nil, ""
	}
	return t
}

// GetName returns Node's agent.getName(options) for t: for http
// "host:port:localAddress", then ":family" when family is 4 or 6 and
// ":socketPath" for unix sockets; for https the TLS options that decide
// reuse follow in the order Node's https Agent appends them (ca, cert,
// clientCertEngine, ciphers, key, pfx, rejectUnauthorized, servername when
// it differs from host, minVersion, maxVersion, then options the gateway
// does not support, always empty).
//
// A proxied target's name ends with ":proxy=" and the proxy URL (scheme,
// user name, host and port; the password shows as "xxxxx"), so proxied
// and direct sockets never mix, nor sockets of different proxies or proxy
// users. An http target through a proxy is named after the proxy alone
// ("proxyhost:proxyport:localAddress[:family]:proxy=URL"): its sockets
// carry absolute-form requests to any origin, so they are pooled per
// proxy. An https target through a proxy keeps its full origin name (the
// tunnel and its TLS session belong to one origin) followed by the
// proxy. Node's documentation does not specify names for proxied
// requests; this is the gateway's choice.
func (a *Agent) GetName(t Target) string {
	return nameOf(a.effectiveTarget(t))
}

func nameOf(t Target) string {
	if t.Proxy == nil || t.SocketPath != "" {
		return directName(t)
	}
	suffix := ":proxy=" + redactedProxy(t.Proxy)
	if t.Protocol != "https:" {
		h, p := proxyenv.HostPort(t.Proxy)
		return directName(Target{Protocol: "http:", Host: h, Port: p, LocalAddress: t.LocalAddress, Family: t.Family}) + suffix
	}
	return directName(t) + suffix
}

func directName(t Target) string {
	var b strings.Builder
	host := t.Host
	if host == "" {
		host = "localhost"
	}
	b.WriteString(host)
	b.WriteByte(':')
	if t.Port != 0 {
		b.WriteString(strconv.Itoa(t.Port))
	}
	b.WriteByte(':')
	b.WriteString(t.LocalAddress)
	if t.Family == 4 || t.Family == 6 {
		b.WriteByte(':')
		b.WriteString(strconv.Itoa(t.Family))
	}
	if t.SocketPath != "" {
		b.WriteByte(':')
		b.WriteString(t.SocketPath)
	}
	if t.Protocol != "https:" {
		return b.String()
	}
	o := t.TLS
	if o == nil {
		o = &TLSOptions{}
	}
	ru := ""
	if o.RejectUnauthorized != nil {
		ru = strconv.FormatBool(*o.RejectUnauthorized)
	}
	sn := ""
	if o.ServerName != "" && o.ServerName != t.Host {
		sn = o.ServerName
	}
	fields := []string{
		string(o.CA),
		string(o.Cert),
		"", // clientCertEngine
		o.Ciphers,
		string(o.Key),
		"", // pfx
		ru,
		sn,
		o.MinVersion,
		o.MaxVersion,
		"", // secureProtocol
		"", // crl
		"", // honorCipherOrder
		"", // ecdhCurve
		"", // dhparam
		"", // secureOptions
		"", // sessionIdContext
		"", // sigalgs
		"", // privateKeyIdentifier
		"", // privateKeyEngine
	}
	for _, f := range fields {
		b.WriteByte(':')
		b.WriteString(f)
	}
	return b.String()
}

// validateTarget rejects targets no socket can be made for.
func validateTarget(t Target) error {
	switch t.Protocol {
	case "http:", "https:":
	default:
		return nodeerr.New(nodeerr.ERR_INVALID_PROTOCOL,
			fmt.Sprintf("Protocol %q not supported. Expected \"http:\" or \"https:\"", t.Protocol))
	}
	if t.Family != 0 && t.Family != 4 && t.Family != 6 {
		return nodeerr.New(nodeerr.ERR_INVALID_ARG_VALUE,
			fmt.Sprintf("The property 'options.family' must be one of: 0, 4, 6. Received %d", t.Family))
	}
	if t.SocketPath == "" && (t.Port < 0 || t.Port > 65535) {
		return outOfRange("options.port", ">= 0 and <= 65535", t.Port)
	}
	if t.Proxy != nil && t.SocketPath == "" {
		if (t.Proxy.Scheme != "http" && t.Proxy.Scheme != "https") || t.Proxy.Hostname() == "" {
			return nodeerr.New(nodeerr.ERR_INVALID_ARG_VALUE,
				fmt.Sprintf("The property 'options.proxy' must be an http: or https: URL with a host. Received %q", redactedProxy(t.Proxy)))
		}
		if strings.ContainsAny(t.ProxyAuth, "\r\n\x00") {
			return nodeerr.New(nodeerr.ERR_INVALID_CHAR, `Invalid character in header content ["Proxy-Authorization"]`)
		}
	}
	if t.TLS != nil {
		return t.TLS.validate()
	}
	return nil
}
