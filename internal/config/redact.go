package config

import (
	"log/slog"
	"slices"
)

// redactedMark replaces each secret item, so the log still shows how many
// tokens are configured without showing any of them.
const redactedMark = "[REDACTED]"

// Redacted returns a copy of c with every secret setting masked, for logs
// and diagnostics. The copy shares nothing with c.
func (c Config) Redacted() Config {
	r := c
	r.EgressAllow = slices.Clone(c.EgressAllow)
	r.EgressDeny = slices.Clone(c.EgressDeny)
	r.EgressRoles = slices.Clone(c.EgressRoles)
	r.AuthRoles = slices.Clone(c.AuthRoles)
	r.AuthTokens = nil
	for range c.AuthTokens {
		r.AuthTokens = append(r.AuthTokens, redactedMark)
	}
	return r
}

// LogValue makes a Config log as a group keyed by setting name, always
// redacted, so slog.Any("config", cfg) cannot leak a secret by mistake.
func (c Config) LogValue() slog.Value {
	r := c.Redacted()
	attrs := make([]slog.Attr, 0, len(fields))
	for _, f := range fields {
		attrs = append(attrs, slog.Attr{Key: f.name, Value: f.bind(&r).logValue()})
	}
	return slog.GroupValue(attrs...)
}
