package config

import (
	"log/slog"
	"strings"
	"time"
)

// Config is the gateway's whole configuration, after defaults, the config
// file, the environment and flags have been layered and Validate has passed.
// The comment on each field gives its default; Default returns them.
type Config struct {
	// ConfigFile is the YAML file that was read ("" = none). Set by --config or
	// GATEWAY_CONFIG only; a config file cannot name another one.
	ConfigFile string

	// Listen is the gRPC listen address, host:port. Default ":50051".
	// Port 0 picks a free port; the bound address is logged.
	Listen string
	// AdminListen is the admin HTTP listen address (/healthz, /readyz,
	// /debug/pprof/). Default "" = no admin listener.
	AdminListen string

	// EgressAllow lists CIDRs, IP addresses and host patterns ("example.com",
	// "*.example.com"), each optionally with ":port", opened on top of the
	// default egress policy. Default empty. See ParseEgressRule.
	EgressAllow []string
	// EgressDeny lists rules, in EgressAllow's syntax, denied on top of the
	// default egress policy. Default empty.
	EgressDeny []string
	// EgressMode is the base policy's mode: "enforce" (default) denies,
	// "report-only" logs what it would deny and lets the dial go ahead.
	// Roles follow it unless their own mode says otherwise.
	EgressMode string
	// EgressRoles are per-role layers over the base policy, as
	// "<role>:<setting>" items (see ParseEgressRoles): a role's own allow
	// and deny rules, its mode, and whether it is limited to its allow
	// rules. An identity whose role has no item here gets the base policy.
	// Default empty.
	EgressRoles []string

	// LogLevel is the minimum level logged. Default info.
	LogLevel slog.Level
	// LogFormat is "json" (default) or "text".
	LogFormat string

	// DrainDelay is how long the server keeps accepting work after health
	// turned NOT_SERVING at shutdown, so load balancers and probes notice
	// before the listener closes. Default 0.
	DrainDelay time.Duration
	// ShutdownGrace bounds the graceful stop: RPCs still running after it are
	// cancelled. Default 10s; 0 stops at once.
	ShutdownGrace time.Duration

	// MaxRecvMsgSize is the largest gRPC message accepted, in bytes. Default
	// 4 MiB (gRPC's own); large bodies are meant to be streamed.
	MaxRecvMsgSize int
	// MaxSendMsgSize is the largest gRPC message sent, in bytes. Default 16 MiB,
	// which bounds what one Fetch response can carry.
	MaxSendMsgSize int
	// MaxConcurrentStreams limits concurrent streams (calls) per client
	// connection. Default 1024.
	MaxConcurrentStreams uint32

	// KeepaliveMinTime is the shortest interval between client pings the
	// server tolerates; faster pingers get GOAWAY "too_many_pings". Default 10s.
	KeepaliveMinTime time.Duration
	// KeepalivePermitWithoutStream lets clients ping while they have no active
	// call (idle connections kept warm for client-side load balancing).
	// Default true.
	KeepalivePermitWithoutStream bool
	// KeepaliveTime is how long a connection may be idle before the server
	// pings it to detect a dead client. Default 1m; minimum 1s.
	KeepaliveTime time.Duration
	// KeepaliveTimeout is how long the server waits for a ping ack before it
	// closes the connection. Default 20s.
	KeepaliveTimeout time.Duration
	// MaxConnectionIdle closes connections without calls after this long.
	// Default 0 = never.
	MaxConnectionIdle time.Duration
	// MaxConnectionAge sends GOAWAY to connections older than this, so
	// clients re-resolve and spread over new replicas. Default 0 = never.
	MaxConnectionAge time.Duration
	// MaxConnectionAgeGrace is how long calls may run on a connection after
	// MaxConnectionAge. Default 0 = no limit.
	MaxConnectionAgeGrace time.Duration

	// RequestIdleTimeout destroys a ClientRequest handle that sees no RPC
	// activity for this long (used by the rpc layer). Default 5m.
	RequestIdleTimeout time.Duration
	// MaxLiveRequests bounds the ClientRequest handles alive at once (used by
	// the rpc layer). Default 10000.
	MaxLiveRequests int
	// ProxyFromEnv gives the `global` agent the gateway process's own
	// HTTP_PROXY/HTTPS_PROXY/NO_PROXY (and lower-case forms) as its
	// proxyEnv: a gateway-wide default proxy. Default false.
	ProxyFromEnv bool

	// TLSCertFile and TLSKeyFile are the server certificate and key (PEM).
	// Both or neither; default "" = plaintext.
	TLSCertFile string
	TLSKeyFile  string
	// TLSClientCAFile, when set, requires and verifies client certificates
	// (mTLS) against these CAs (PEM). Needs TLSCertFile. Default "".
	TLSClientCAFile string

	// AuthTokensFile names a file of accepted bearer tokens, one per line.
	// Default "" = none.
	AuthTokensFile string
	// AuthTokens are accepted bearer tokens given inline (environment or config
	// file only, never a flag: argv is readable by every local user). Secret:
	// redacted in logs. Default empty.
	AuthTokens []string
	// AuthRoles maps client-certificate identities to roles, as
	// "identity=role" items. Token identities take their role from the
	// tokens file. Default empty (every identity has the default role "").
	AuthRoles []string
	// AllowAnonymous accepts calls without credentials (as the anonymous
	// identity) even though tokens or mTLS are configured. With no
	// authentication configured at all every call is anonymous whatever
	// this says (see AnonymousAllowed). Default false.
	AllowAnonymous bool

	// MaxRequestsPerCaller bounds one identity's requests alive at once
	// (Fetch calls in flight plus request handles). Default 1000; 0 = no bound.
	MaxRequestsPerCaller int
	// MaxHandlesPerCaller bounds one identity's live request handles
	// (Request, Exchange). Default 1000; 0 = no bound.
	MaxHandlesPerCaller int
	// CallerRate is the requests per second one identity may start
	// (a token bucket with a burst of the same size). Default 0 = no bound.
	CallerRate int
	// MaxRequestDuration bounds every request from creation to 'close'
	// (httpengine MaxDuration); past it the request fails with ETIMEDOUT.
	// Default 0 = no bound.
	MaxRequestDuration time.Duration
	// MaxRequestHeaderBytes bounds the header lines (name and value bytes,
	// as "Name: value\r\n") a caller gives one request, at creation and
	// through header edits. Default 0 = no bound.
	MaxRequestHeaderBytes int
	// MaxRequestBodyBytes bounds the body bytes a caller writes into one
	// request. Default 0 = no bound.
	MaxRequestBodyBytes int64
	// MaxResponseBodyBytes bounds the response body bytes one request
	// delivers to its caller (Events, Exchange, Fetch). Default 0 = no
	// bound (Fetch keeps its own cap, see max-send-msg-size).
	MaxResponseBodyBytes int64
	// MaxTunnelDuration bounds how long a Tunnel stays open. Default 0 =
	// no bound.
	MaxTunnelDuration time.Duration
	// MaxTunnelBytes bounds the bytes one Tunnel carries, both directions
	// together. Default 0 = no bound.
	MaxTunnelBytes int64
}

// AuthConfigured reports whether any authentication is configured: tokens
// or client certificates.
func (c *Config) AuthConfigured() bool {
	return c.AuthTokensFile != "" || len(c.AuthTokens) > 0 || c.TLSClientCAFile != ""
}

// AnonymousAllowed reports whether calls without credentials are accepted:
// when AllowAnonymous is set, or when no authentication is configured at
// all (so a gateway started with no setup works).
func (c *Config) AnonymousAllowed() bool { return c.AllowAnonymous || !c.AuthConfigured() }

// AuthRoleMap returns AuthRoles as a map (Validate checked the syntax).
func (c *Config) AuthRoleMap() map[string]string {
	m := map[string]string{}
	for _, item := range c.AuthRoles {
		if id, role, ok := strings.Cut(item, "="); ok {
			m[strings.TrimSpace(id)] = strings.TrimSpace(role)
		}
	}
	return m
}

// EgressRoleList returns EgressRoles parsed (Validate checked them).
func (c *Config) EgressRoleList() []EgressRole {
	roles, _ := ParseEgressRoles(c.EgressRoles)
	return roles
}

// Default returns the configuration used when nothing is set.
func Default() Config {
	return Config{
		Listen:                       ":50051",
		EgressMode:                   EgressModeEnforce,
		LogLevel:                     slog.LevelInfo,
		LogFormat:                    "json",
		ShutdownGrace:                10 * time.Second,
		MaxRecvMsgSize:               4 << 20,
		MaxSendMsgSize:               16 << 20,
		MaxConcurrentStreams:         1024,
		KeepaliveMinTime:             10 * time.Second,
		KeepalivePermitWithoutStream: true,
		KeepaliveTime:                time.Minute,
		KeepaliveTimeout:             20 * time.Second,
		RequestIdleTimeout:           5 * time.Minute,
		MaxLiveRequests:              10000,
		MaxRequestsPerCaller:         1000,
		MaxHandlesPerCaller:          1000,
	}
}
