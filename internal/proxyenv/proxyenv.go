package proxyenv

import (
	"errors"
	"fmt"
	"net/url"
	"strconv"
	"strings"

	"github.com/httpgateway/httpgateway/internal/nodeerr"
)

// The proxyEnv keys Node reads. Any other key of the map is ignored, so a
// whole process environment may be passed, as Node allows `proxyEnv:
// process.env`.
const (
	KeyHTTPProxy       = "HTTP_PROXY"
	KeyHTTPProxyLower  = "http_proxy"
	KeyHTTPSProxy      = "HTTPS_PROXY"
	KeyHTTPSProxyLower = "https_proxy"
	KeyNoProxy         = "NO_PROXY"
	KeyNoProxyLower    = "no_proxy"
)

// Config is one agent's parsed proxyEnv. The zero value (and nil) proxies
// nothing.
type Config struct {
	// HTTPProxy is the proxy for "http:" targets, nil for none.
	HTTPProxy *url.URL
	// HTTPSProxy is the proxy for "https:" targets, nil for none.
	HTTPSProxy *url.URL
	// NoProxy are the NO_PROXY entries, in the order written.
	NoProxy []Rule
}

// Parse reads env as Node's proxyEnv. For each pair the lower-case key
// wins when both are set; as Node reads them with `env.x || env.X`, an
// empty value counts as unset. A proxy URL must parse, have the http or
// https scheme and a host, and contain no control characters; a bad one is
// an ERR_INVALID_URL or ERR_INVALID_ARG_VALUE *nodeerr.Error whose message
// never shows the URL's password. NO_PROXY never fails: an entry that is
// none of the known forms is an exact host name that matches nothing real.
func Parse(env map[string]string) (*Config, error) {
	c := &Config{}
	var err error
	if v, key := pick(env, KeyHTTPProxyLower, KeyHTTPProxy); v != "" {
		if c.HTTPProxy, err = ParseProxyURL(key, v); err != nil {
			return nil, err
		}
	}
	if v, key := pick(env, KeyHTTPSProxyLower, KeyHTTPSProxy); v != "" {
		if c.HTTPSProxy, err = ParseProxyURL(key, v); err != nil {
			return nil, err
		}
	}
	if v, _ := pick(env, KeyNoProxyLower, KeyNoProxy); v != "" {
		c.NoProxy = ParseNoProxy(v)
	}
	return c, nil
}

func pick(env map[string]string, lower, upper string) (string, string) {
	if v := env[lower]; v != "" {
		return v, lower
	}
	return env[upper], upper
}

// ParseProxyURL parses one proxy URL; key names the setting in errors.
func ParseProxyURL(key, raw string) (*url.URL, error) {
	if strings.ContainsFunc(raw, func(r rune) bool { return r < 0x20 || r == 0x7f }) {
		return nil, nodeerr.New(nodeerr.ERR_INVALID_ARG_VALUE,
			fmt.Sprintf("The property 'proxyEnv.%s' must not contain control characters", key))
	}
	u, err := url.Parse(raw)
	if err != nil {
		return nil, &nodeerr.Error{Code: nodeerr.ERR_INVALID_URL,
			Message: fmt.Sprintf("Invalid URL in proxyEnv.%s", key), Err: redactErr(err)}
	}
	switch {
	case u.Scheme != "http" && u.Scheme != "https":
		return nil, nodeerr.New(nodeerr.ERR_INVALID_ARG_VALUE,
			fmt.Sprintf("The property 'proxyEnv.%s' must be an http: or https: URL. Received %q", key, u.Redacted()))
	case u.Opaque != "" || u.Hostname() == "":
		return nil, nodeerr.New(nodeerr.ERR_INVALID_URL,
			fmt.Sprintf("Invalid URL in proxyEnv.%s: no host. Received %q", key, u.Redacted()))
	}
	if p := u.Port(); p != "" {
		if n, err := strconv.Atoi(p); err != nil || n < 1 || n > 65535 {
			return nil, nodeerr.New(nodeerr.ERR_INVALID_URL,
				fmt.Sprintf("Invalid URL in proxyEnv.%s: bad port. Received %q", key, u.Redacted()))
		}
	}
	return u, nil
}

// redactErr drops the URL from a url.Parse error: it may hold a password.
func redactErr(err error) error {
	var ue *url.Error
	if errors.As(err, &ue) {
		return ue.Err
	}
	return err
}

// HostPort returns a proxy URL's host (no brackets) and port, the scheme's
// default port (80, 443) when the URL has none.
func HostPort(u *url.URL) (string, int) {
	port, _ := strconv.Atoi(u.Port())
	if port == 0 {
		port = 80
		if u.Scheme == "https" {
			port = 443
		}
	}
	return u.Hostname(), port
}

// ProxyFor decides one request: the proxy URL to use for protocol ("http:"
// or "https:", the colon optional) to host:port, nil for a direct
// connection, and the NO_PROXY entry that sent it direct ("" when no entry
// did: no proxy is configured for the protocol, or none matched). NO_PROXY
// is only consulted when there is a proxy to bypass. There is no implicit
// bypass for localhost or loopback addresses: as in Node, list them in
// NO_PROXY. An empty host means "localhost", as in Node.
//
// The returned URL is the Config's own; callers must not modify it.
func (c *Config) ProxyFor(protocol, host string, port int) (proxy *url.URL, rule string) {
	if c == nil {
		return nil, ""
	}
	switch strings.TrimSuffix(protocol, ":") {
	case "http":
		proxy = c.HTTPProxy
	case "https":
		proxy = c.HTTPSProxy
	}
	if proxy == nil {
		return nil, ""
	}
	if r := c.Bypass(host, port); r != nil {
		return nil, r.Entry
	}
	return proxy, ""
}

// Bypass returns the first NO_PROXY rule that matches host:port, or nil.
func (c *Config) Bypass(host string, port int) *Rule {
	if c == nil || len(c.NoProxy) == 0 {
		return nil
	}
	h := normalizeHost(host)
	for i := range c.NoProxy {
		if c.NoProxy[i].match(h, port) {
			return &c.NoProxy[i]
		}
	}
	return nil
}
