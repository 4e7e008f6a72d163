package config

import (
	"errors"
	"fmt"
	"math"
	"net"
	"os"
	"strconv"
	"strings"
	"time"
)

// FieldError is a problem with one setting, named as the operator writes it
// (the flag name, which is also the file key).
type FieldError struct {
	Field string
	Err   error
}

func (e *FieldError) Error() string { return e.Field + ": " + e.Err.Error() }
func (e *FieldError) Unwrap() error { return e.Err }

// Validate checks every setting and reports all problems at once, each as a
// *FieldError, so an operator fixes a bad config in one round.
// It also checks that named files exist: failing at start beats failing on
// the first TLS handshake.
func (c *Config) Validate() error {
	var errs []error
	bad := func(field, format string, args ...any) {
		errs = append(errs, &FieldError{Field: field, Err: fmt.Errorf(format, args...)})
	}
	wrap := func(field string, err error) {
		if err != nil {
			errs = append(errs, &FieldError{Field: field, Err: err})
		}
	}

	if c.Listen == "" {
		bad("listen", "must not be empty (default :50051)")
	} else {
		wrap("listen", checkListenAddr(c.Listen))
	}
	if c.AdminListen != "" {
		wrap("admin-listen", checkListenAddr(c.AdminListen))
		// Port 0 picks a fresh port for each, so only fixed ports can clash.
		if _, port, _ := net.SplitHostPort(c.AdminListen); c.AdminListen == c.Listen && port != "0" {
			bad("admin-listen", "%q is also the gRPC listen address", c.AdminListen)
		}
	}
	for i, r := range c.EgressAllow {
		if _, err := ParseEgressRule(r); err != nil {
			bad("egress-allow", "entry %d: %w", i+1, err)
		}
	}
	for i, r := range c.EgressDeny {
		if _, err := ParseEgressRule(r); err != nil {
			bad("egress-deny", "entry %d: %w", i+1, err)
		}
	}
	if c.EgressMode != EgressModeEnforce && c.EgressMode != EgressModeReportOnly {
		bad("egress-mode", "%q: want %s or %s", c.EgressMode, EgressModeEnforce, EgressModeReportOnly)
	}
	if _, err := ParseEgressRoles(c.EgressRoles); err != nil {
		wrap("egress-roles", err)
	}
	if c.LogFormat != "json" && c.LogFormat != "text" {
		bad("log-format", "%q: want json or text", c.LogFormat)
	}

	for _, d := range []struct {
		name string
		v    time.Duration
		min  time.Duration
	}{
		{"drain-delay", c.DrainDelay, 0},
		{"shutdown-grace", c.ShutdownGrace, 0},
		{"keepalive-min-time", c.KeepaliveMinTime, 0},
		// gRPC raises anything shorter to 1s anyway; say so instead.
		{"keepalive-time", c.KeepaliveTime, time.Second},
		{"keepalive-timeout", c.KeepaliveTimeout, 0},
		{"max-connection-idle", c.MaxConnectionIdle, 0},
		{"max-connection-age", c.MaxConnectionAge, 0},
		{"max-connection-age-grace", c.MaxConnectionAgeGrace, 0},
		{"request-idle-timeout", c.RequestIdleTimeout, time.Second},
	} {
		switch {
		case d.v < 0:
			bad(d.name, "%s: must not be negative", d.v)
		case d.v < d.min:
			bad(d.name, "%s: must be at least %s", d.v, d.min)
		}
	}

	if c.MaxRecvMsgSize <= 0 || c.MaxRecvMsgSize > math.MaxInt32 {
		bad("max-recv-msg-size", "%d: must be between 1 and %d bytes", c.MaxRecvMsgSize, math.MaxInt32)
	}
	if c.MaxSendMsgSize <= 0 || c.MaxSendMsgSize > math.MaxInt32 {
		bad("max-send-msg-size", "%d: must be between 1 and %d bytes", c.MaxSendMsgSize, math.MaxInt32)
	}
	if c.MaxConcurrentStreams == 0 {
		bad("max-concurrent-streams", "must be positive")
	}
	if c.MaxLiveRequests <= 0 {
		bad("max-live-requests", "%d: must be positive", c.MaxLiveRequests)
	}

	if (c.TLSCertFile == "") != (c.TLSKeyFile == "") {
		bad("tls-cert-file", "tls-cert-file and tls-key-file must be set together")
	}
	if c.TLSClientCAFile != "" && c.TLSCertFile == "" {
		bad("tls-client-ca-file", "needs tls-cert-file and tls-key-file (mTLS is TLS first)")
	}
	for _, f := range []struct{ name, path string }{
		{"tls-cert-file", c.TLSCertFile},
		{"tls-key-file", c.TLSKeyFile},
		{"tls-client-ca-file", c.TLSClientCAFile},
		{"auth-tokens-file", c.AuthTokensFile},
	} {
		if f.path != "" {
			wrap(f.name, checkReadableFile(f.path))
		}
	}
	for i, t := range c.AuthTokens {
		// Never echo a token: name its position only. An item is
		// "<token> [<identity> [<role>]]"; the token is its first field.
		if f := strings.Fields(t); len(f) == 0 || len(f[0]) < 16 || len(f) > 3 {
			bad("auth-tokens", "token %d: want \"<token> [<identity> [<role>]]\" with a token of at least 16 characters", i+1)
		}
	}
	for i, r := range c.AuthRoles {
		if id, role, ok := strings.Cut(r, "="); !ok || strings.TrimSpace(id) == "" || strings.TrimSpace(role) == "" {
			bad("auth-roles", "entry %d: %q: want identity=role", i+1, r)
		}
	}
	for _, n := range []struct {
		name string
		v    int64
	}{
		{"max-requests-per-caller", int64(c.MaxRequestsPerCaller)},
		{"max-handles-per-caller", int64(c.MaxHandlesPerCaller)},
		{"caller-rate", int64(c.CallerRate)},
		{"max-request-header-bytes", int64(c.MaxRequestHeaderBytes)},
		{"max-request-body-bytes", c.MaxRequestBodyBytes},
		{"max-response-body-bytes", c.MaxResponseBodyBytes},
		{"max-tunnel-bytes", c.MaxTunnelBytes},
	} {
		if n.v < 0 {
			bad(n.name, "%d: must not be negative (0 = no bound)", n.v)
		}
	}
	for _, d := range []struct {
		name string
		v    time.Duration
	}{
		{"max-request-duration", c.MaxRequestDuration},
		{"max-tunnel-duration", c.MaxTunnelDuration},
	} {
		if d.v < 0 {
			bad(d.name, "%s: must not be negative (0 = no bound)", d.v)
		}
	}

	if len(errs) > 0 {
		return fmt.Errorf("invalid configuration: %w", errors.Join(errs...))
	}
	return nil
}

// checkListenAddr accepts host:port with an empty host (all interfaces), an
// IP or a name, and a numeric port 0-65535 (0 = pick a free port).
func checkListenAddr(addr string) error {
	_, port, err := net.SplitHostPort(addr)
	if err != nil {
		return fmt.Errorf("%q: want host:port, e.g. :50051 or 127.0.0.1:50051", addr)
	}
	if _, err := strconv.ParseUint(port, 10, 16); err != nil {
		return fmt.Errorf("%q: port %q must be a number 0-65535", addr, port)
	}
	return nil
}

func checkReadableFile(path string) error {
	st, err := os.Stat(path)
	if err != nil {
		return err // *PathError names the path and the reason
	}
	if st.IsDir() {
		return fmt.Errorf("%s is a directory", path)
	}
	return nil
}
