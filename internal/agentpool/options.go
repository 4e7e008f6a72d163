package agentpool

import (
	"fmt"
	"maps"
	"net/url"
	"time"

	"github.com/httpgateway/httpgateway/internal/nodeerr"
	"github.com/httpgateway/httpgateway/internal/proxyenv"
)

// Scheduling is Node's agent.scheduling: which free socket a request gets.
type Scheduling int

const (
	// LIFO picks the most recently used free socket (Node's default since
	// v15.6): at low request rates it is the one least likely to have been
	// closed by the server for inactivity, and it keeps the pool small.
	LIFO Scheduling = iota
	// FIFO picks the least recently used free socket, spreading load over
	// every open socket.
	FIFO
)

// String returns Node's spelling, "lifo" or "fifo".
func (s Scheduling) String() string {
	switch s {
	case LIFO:
		return "lifo"
	case FIFO:
		return "fifo"
	}
	return fmt.Sprintf("Scheduling(%d)", int(s))
}

// ParseScheduling parses Node's spelling; anything else is
// ERR_INVALID_ARG_VALUE, as Node's validateOneOf throws.
func ParseScheduling(s string) (Scheduling, error) {
	switch s {
	case "lifo", "":
		return LIFO, nil
	case "fifo":
		return FIFO, nil
	}
	return 0, nodeerr.New(nodeerr.ERR_INVALID_ARG_VALUE,
		fmt.Sprintf("The argument 'scheduling' must be one of: 'fifo', 'lifo'. Received '%s'", s))
}

// Options are the options of `new http.Agent(options)`. Zero values of
// KeepAliveMsecs, MaxFreeSockets and KeepAliveTimeoutBuffer select Node's
// defaults, as Node's `options.x || default` does for the first two.
type Options struct {
	// KeepAlive keeps sockets in the free list after a request. Node's
	// default is false for new Agent(), true for the global agent.
	KeepAlive bool
	// KeepAliveMsecs is the TCP keep-alive initial delay applied to free
	// sockets (Node's keepSocketAlive). Default 1s.
	//lint:ignore ST1011 the name mirrors Node's keepAliveMsecs option; the type is a Duration so no unit is implied
	KeepAliveMsecs time.Duration
	// MaxSockets limits sockets per name (in use and free); 0 is unlimited
	// (Node's Infinity).
	MaxSockets int
	// MaxTotalSockets limits sockets across names; 0 is unlimited.
	MaxTotalSockets int
	// MaxFreeSockets limits free sockets per name. Default 256.
	MaxFreeSockets int
	// Scheduling picks free sockets: LIFO (default) or FIFO.
	Scheduling Scheduling
	// Timeout is the socket idle timeout set on every socket the agent
	// creates (Node's `timeout` option): an idle socket in use gets
	// Exchange.OnTimeout, an idle free socket is destroyed. 0 is none.
	Timeout time.Duration
	// KeepAliveTimeoutBuffer is Node's agentKeepAliveTimeoutBuffer: a
	// response's `Keep-Alive: timeout=N` makes the free socket live at most
	// N - buffer, and not at all when that is <= 0. Default 1s.
	KeepAliveTimeoutBuffer time.Duration
	// RetryReusedIdempotent asks the engine to retry an idempotent request
	// once when a reused socket fails before any response byte. The pool
	// only carries the flag.
	RetryReusedIdempotent bool
	// TLS holds agent-wide TLS options for https targets. As in Node, where
	// addRequest merges `{...requestOptions, ...agent.options}`, a field set
	// here wins over the same field of Target.TLS. For http targets sent
	// through an https proxy, its CA, RejectUnauthorized and versions
	// verify the proxy.
	TLS *TLSOptions
	// ProxyEnv is Node's proxyEnv agent option: HTTP_PROXY / http_proxy,
	// HTTPS_PROXY / https_proxy and NO_PROXY / no_proxy (lower case wins
	// when both are set; other keys are ignored). nil or empty proxies
	// nothing. See package proxyenv for the NO_PROXY forms, and
	// Agent.ProxyFor.
	ProxyEnv map[string]string
}

const (
	defaultKeepAliveDelay         = time.Second
	defaultMaxFreeSockets         = 256
	defaultKeepAliveTimeoutBuffer = time.Second
	globalAgentTimeout            = 5 * time.Second
)

// DefaultOptions returns the options of `new http.Agent()`.
func DefaultOptions() Options {
	return Options{
		KeepAliveMsecs:         defaultKeepAliveDelay,
		MaxFreeSockets:         defaultMaxFreeSockets,
		Scheduling:             LIFO,
		KeepAliveTimeoutBuffer: defaultKeepAliveTimeoutBuffer,
	}
}

// GlobalOptions returns the options of Node's current http.globalAgent:
// keepAlive true, timeout 5 s, lifo, maxFreeSockets 256, no socket limits.
func GlobalOptions() Options {
	o := DefaultOptions()
	o.KeepAlive = true
	o.Timeout = globalAgentTimeout
	return o
}

// Validate reports the first bad value as Node would throw it
// (ERR_OUT_OF_RANGE, ERR_INVALID_ARG_VALUE). Nothing is clamped.
func (o Options) Validate() error {
	checks := []struct {
		name string
		bad  bool
		want string
		got  any
	}{
		{"keepAliveMsecs", o.KeepAliveMsecs < 0, ">= 0", o.KeepAliveMsecs},
		{"maxSockets", o.MaxSockets < 0, "> 0 (0 for Infinity)", o.MaxSockets},
		{"maxTotalSockets", o.MaxTotalSockets < 0, "> 0 (0 for Infinity)", o.MaxTotalSockets},
		{"maxFreeSockets", o.MaxFreeSockets < 0, ">= 0", o.MaxFreeSockets},
		{"timeout", o.Timeout < 0, ">= 0", o.Timeout},
		{"agentKeepAliveTimeoutBuffer", o.KeepAliveTimeoutBuffer < 0, ">= 0", o.KeepAliveTimeoutBuffer},
	}
	for _, c := range checks {
		if c.bad {
			return outOfRange(c.name, c.want, c.got)
		}
	}
	if o.Scheduling != LIFO && o.Scheduling != FIFO {
		return nodeerr.New(nodeerr.ERR_INVALID_ARG_VALUE,
			fmt.Sprintf("The argument 'scheduling' must be one of: 'fifo', 'lifo'. Received %s", o.Scheduling))
	}
	if o.TLS != nil {
		if err := o.TLS.validate(); err != nil {
			return err
		}
	}
	if _, err := proxyenv.Parse(o.ProxyEnv); err != nil {
		return err
	}
	return nil
}

// redacted returns o with the passwords of ProxyEnv's URLs replaced by
// "xxxxx", for inspection and logs.
func (o Options) redacted() Options {
	if len(o.ProxyEnv) == 0 {
		return o
	}
	env := make(map[string]string, len(o.ProxyEnv))
	for k, v := range o.ProxyEnv {
		switch k {
		case proxyenv.KeyHTTPProxy, proxyenv.KeyHTTPProxyLower, proxyenv.KeyHTTPSProxy, proxyenv.KeyHTTPSProxyLower:
			if u, err := url.Parse(v); err == nil {
				v = u.Redacted()
			}
		}
		env[k] = v
	}
	o.ProxyEnv = env
	return o
}

// withDefaults applies Node's `||` defaults to zero values.
func (o Options) withDefaults() Options {
	if o.KeepAliveMsecs == 0 {
		o.KeepAliveMsecs = defaultKeepAliveDelay
	}
	if o.MaxFreeSockets == 0 {
		o.MaxFreeSockets = defaultMaxFreeSockets
	}
	if o.KeepAliveTimeoutBuffer == 0 {
		o.KeepAliveTimeoutBuffer = defaultKeepAliveTimeoutBuffer
	}
	// The agent keeps its own copy: the caller may reuse its map.
	o.ProxyEnv = maps.Clone(o.ProxyEnv)
	return o
}

func outOfRange(name, want string, got any) *nodeerr.Error {
	return nodeerr.New(nodeerr.ERR_OUT_OF_RANGE,
		fmt.Sprintf("The value of %q is out of range. It must be %s. Received %v", name, want, got))
}
