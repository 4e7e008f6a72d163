package config

import "strings"

// field declares one setting once for every layer: its name is the flag name
// and the config-file key, and envName derives the environment variable.
type field struct {
	name  string
	usage string
	// secret values never reach logs or error messages, and are not flags.
	secret bool
	// noFile marks settings a config file may not set (the file's own path).
	noFile bool
	// bind returns the setting's value inside c, so one parser serves the
	// flag, environment and file layers alike.
	bind func(c *Config) value
}

// envPrefix starts every environment variable the gateway reads.
const envPrefix = "GATEWAY_"

func (f *field) envName() string {
	return envPrefix + strings.ToUpper(strings.ReplaceAll(f.name, "-", "_"))
}

func (f *field) isFlag() bool { return !f.secret }

// fields is the table of every setting, in the order they are documented.
var fields = []*field{
	{name: "config", noFile: true, usage: "YAML config `file` (flags and environment override it)",
		bind: func(c *Config) value { return (*stringValue)(&c.ConfigFile) }},
	{name: "listen", usage: "gRPC listen `address` (host:port; port 0 picks one)",
		bind: func(c *Config) value { return (*stringValue)(&c.Listen) }},
	{name: "admin-listen", usage: "admin HTTP listen `address` for /healthz, /readyz, /debug/pprof/ (empty = off)",
		bind: func(c *Config) value { return (*stringValue)(&c.AdminListen) }},
	{name: "egress-allow", usage: "comma-separated `rules` (CIDR, IP, host or *.host, optional :port) opened on top of the default egress policy",
		bind: func(c *Config) value { return (*listValue)(&c.EgressAllow) }},
	{name: "egress-deny", usage: "comma-separated `rules` denied on top of the default egress policy",
		bind: func(c *Config) value { return (*listValue)(&c.EgressDeny) }},
	{name: "egress-mode", usage: "`mode` of the egress policy: enforce, or report-only (log what would be denied, deny nothing)",
		bind: func(c *Config) value { return (*stringValue)(&c.EgressMode) }},
	{name: "egress-roles", usage: "comma-separated per-role egress `settings`, each <role>:allow:RULE, <role>:deny:RULE, <role>:mode:MODE or <role>:allow-list-only",
		bind: func(c *Config) value { return (*listValue)(&c.EgressRoles) }},
	{name: "log-level", usage: "minimum log `level`: debug, info, warn or error",
		bind: func(c *Config) value { return (*levelValue)(&c.LogLevel) }},
	{name: "log-format", usage: "log `format`: json or text",
		bind: func(c *Config) value { return (*stringValue)(&c.LogFormat) }},
	{name: "drain-delay", usage: "`duration` to keep serving after health turns NOT_SERVING at shutdown",
		bind: func(c *Config) value { return (*durationValue)(&c.DrainDelay) }},
	{name: "shutdown-grace", usage: "`duration` bounding the graceful stop before running calls are cancelled",
		bind: func(c *Config) value { return (*durationValue)(&c.ShutdownGrace) }},
	{name: "max-recv-msg-size", usage: "largest gRPC message received, in `bytes` (suffixes KiB, MiB, GiB)",
		bind: func(c *Config) value { return (*bytesValue)(&c.MaxRecvMsgSize) }},
	{name: "max-send-msg-size", usage: "largest gRPC message sent, in `bytes` (suffixes KiB, MiB, GiB)",
		bind: func(c *Config) value { return (*bytesValue)(&c.MaxSendMsgSize) }},
	{name: "max-concurrent-streams", usage: "concurrent calls allowed per client `connection`",
		bind: func(c *Config) value { return (*uint32Value)(&c.MaxConcurrentStreams) }},
	{name: "keepalive-min-time", usage: "shortest client ping `interval` tolerated (faster pingers get GOAWAY)",
		bind: func(c *Config) value { return (*durationValue)(&c.KeepaliveMinTime) }},
	{name: "keepalive-permit-without-stream", usage: "allow client pings on connections without active calls",
		bind: func(c *Config) value { return (*boolValue)(&c.KeepalivePermitWithoutStream) }},
	{name: "keepalive-time", usage: "idle `duration` after which the server pings a client",
		bind: func(c *Config) value { return (*durationValue)(&c.KeepaliveTime) }},
	{name: "keepalive-timeout", usage: "`duration` to wait for a ping ack before closing the connection",
		bind: func(c *Config) value { return (*durationValue)(&c.KeepaliveTimeout) }},
	{name: "max-connection-idle", usage: "close connections idle this `long` (0 = never)",
		bind: func(c *Config) value { return (*durationValue)(&c.MaxConnectionIdle) }},
	{name: "max-connection-age", usage: "send GOAWAY to connections older than this (`duration`, 0 = never)",
		bind: func(c *Config) value { return (*durationValue)(&c.MaxConnectionAge) }},
	{name: "max-connection-age-grace", usage: "`duration` calls may run after max-connection-age (0 = no limit)",
		bind: func(c *Config) value { return (*durationValue)(&c.MaxConnectionAgeGrace) }},
	{name: "request-idle-timeout", usage: "destroy a request handle idle this `long`",
		bind: func(c *Config) value { return (*durationValue)(&c.RequestIdleTimeout) }},
	{name: "max-live-requests", usage: "request handles alive at `once`",
		bind: func(c *Config) value { return (*intValue)(&c.MaxLiveRequests) }},
	{name: "proxy-from-env", usage: "give the global agent this process's HTTP_PROXY, HTTPS_PROXY and NO_PROXY",
		bind: func(c *Config) value { return (*boolValue)(&c.ProxyFromEnv) }},
	{name: "tls-cert-file", usage: "server certificate `file` (PEM; empty = plaintext)",
		bind: func(c *Config) value { return (*stringValue)(&c.TLSCertFile) }},
	{name: "tls-key-file", usage: "server private key `file` (PEM)",
		bind: func(c *Config) value { return (*stringValue)(&c.TLSKeyFile) }},
	{name: "tls-client-ca-file", usage: "CA `file` (PEM) that client certificates must chain to (enables mTLS)",
		bind: func(c *Config) value { return (*stringValue)(&c.TLSClientCAFile) }},
	{name: "auth-tokens-file", usage: "`file` of accepted bearer tokens, one \"<token> <identity> [<role>]\" per line (re-read on change)",
		bind: func(c *Config) value { return (*stringValue)(&c.AuthTokensFile) }},
	{name: "auth-tokens", secret: true, usage: "comma-separated accepted bearer tokens (environment or file only)",
		bind: func(c *Config) value { return (*listValue)(&c.AuthTokens) }},
	{name: "auth-roles", usage: "comma-separated `identity=role` items giving client-certificate identities their role",
		bind: func(c *Config) value { return (*listValue)(&c.AuthRoles) }},
	{name: "allow-anonymous", usage: "accept calls without credentials even when tokens or mTLS are configured",
		bind: func(c *Config) value { return (*boolValue)(&c.AllowAnonymous) }},
	{name: "max-requests-per-caller", usage: "requests one identity may have alive at `once` (Fetch + handles; 0 = no bound)",
		bind: func(c *Config) value { return (*intValue)(&c.MaxRequestsPerCaller) }},
	{name: "max-handles-per-caller", usage: "request handles one identity may have alive at `once` (0 = no bound)",
		bind: func(c *Config) value { return (*intValue)(&c.MaxHandlesPerCaller) }},
	{name: "caller-rate", usage: "requests per `second` one identity may start (0 = no bound)",
		bind: func(c *Config) value { return (*intValue)(&c.CallerRate) }},
	{name: "max-request-duration", usage: "`duration` bounding every request from creation to close (0 = no bound)",
		bind: func(c *Config) value { return (*durationValue)(&c.MaxRequestDuration) }},
	{name: "max-request-header-bytes", usage: "largest header `size` a caller may give one request, names and values (0 = no bound)",
		bind: func(c *Config) value { return (*bytesValue)(&c.MaxRequestHeaderBytes) }},
	{name: "max-request-body-bytes", usage: "largest body `size` a caller may write into one request (0 = no bound)",
		bind: func(c *Config) value { return (*size64Value)(&c.MaxRequestBodyBytes) }},
	{name: "max-response-body-bytes", usage: "largest response body `size` one request may deliver to its caller (0 = no bound)",
		bind: func(c *Config) value { return (*size64Value)(&c.MaxResponseBodyBytes) }},
	{name: "max-tunnel-duration", usage: "`duration` a Tunnel may stay open (0 = no bound)",
		bind: func(c *Config) value { return (*durationValue)(&c.MaxTunnelDuration) }},
	{name: "max-tunnel-bytes", usage: "bytes one Tunnel may carry, both ways together (`size`, 0 = no bound)",
		bind: func(c *Config) value { return (*size64Value)(&c.MaxTunnelBytes) }},
}

// fieldByName finds a field by flag name / file key.
func fieldByName(name string) *field {
	for _, f := range fields {
		if f.name == name {
			return f
		}
	}
	return nil
}
