package telemetry

import (
	"net/url"
	"strings"
)

// redacted replaces a secret value in url.full and logs.
const redacted = "REDACTED"

// sensitiveQuery are query parameter names (lower case) whose values are
// credentials or signatures: the OpenTelemetry defaults (AWSAccessKeyId,
// Signature, sig, X-Goog-Signature) and the common signed-URL and token
// forms. Names containing "token", "secret", "signature" or "password"
// are redacted too (see sensitiveParam).
var sensitiveQuery = map[string]bool{
	"awsaccesskeyid":       true,
	"signature":            true,
	"sig":                  true,
	"x-goog-signature":     true,
	"x-goog-credential":    true,
	"x-amz-signature":      true,
	"x-amz-credential":     true,
	"x-amz-security-token": true,
	"token":                true,
	"access_token":         true,
	"id_token":             true,
	"refresh_token":        true,
	"api_key":              true,
	"apikey":               true,
	"api-key":              true,
	"key":                  true,
	"client_secret":        true,
	"password":             true,
	"passwd":               true,
	"auth":                 true,
	"code":                 true,
	"se":                   false, // Azure SAS expiry: not a secret
	"sv":                   false,
}

func sensitiveParam(name string) bool {
	n := strings.ToLower(name)
	if v, ok := sensitiveQuery[n]; ok {
		return v
	}
	return strings.Contains(n, "token") || strings.Contains(n, "secret") ||
		strings.Contains(n, "signature") || strings.Contains(n, "password")
}

// RedactURL returns raw with its credentials replaced by REDACTED: the
// user info (as REDACTED:REDACTED, per the conventions for url.full) and
// the values of sensitive query parameters. The fragment is dropped. A URL
// that does not parse is reduced to what precedes its query, with any
// user info removed, so that nothing secret can leak through a parse
// failure.
func RedactURL(raw string) string {
	u, err := url.Parse(raw)
	if err != nil {
		if i := strings.IndexAny(raw, "?#"); i >= 0 {
			raw = raw[:i]
		}
		if i := strings.Index(raw, "@"); i >= 0 {
			if j := strings.Index(raw, "//"); j >= 0 && j < i {
				raw = raw[:j+2] + redacted + ":" + redacted + raw[i:]
			} else {
				raw = raw[i+1:]
			}
		}
		return raw
	}
	return redactParsed(u)
}

// redactParsed is RedactURL for a parsed URL; u is modified.
func redactParsed(u *url.URL) string {
	if u.User != nil {
		u.User = url.UserPassword(redacted, redacted)
	}
	u.Fragment, u.RawFragment = "", ""
	if u.RawQuery != "" {
		u.RawQuery = redactQuery(u.RawQuery)
	}
	return u.String()
}

// hasSensitiveParam reports whether the raw query q has a parameter
// whose value redactQuery would replace. It allocates only for names
// that are escaped or not in lower case.
func hasSensitiveParam(q string) bool {
	for q != "" {
		var part string
		part, q, _ = strings.Cut(q, "&")
		name, _, hasValue := strings.Cut(part, "=")
		if !hasValue {
			continue
		}
		if strings.ContainsAny(name, "%+") {
			if dec, err := url.QueryUnescape(name); err == nil {
				name = dec
			}
		}
		if sensitiveParam(name) {
			return true
		}
	}
	return false
}

// redactQuery rewrites a raw query keeping its order and encoding, with
// the values of sensitive parameters replaced; q itself when there are
// none.
func redactQuery(q string) string {
	if !hasSensitiveParam(q) {
		return q
	}
	var b strings.Builder
	b.Grow(len(q))
	for i, part := range strings.Split(q, "&") {
		if i > 0 {
			b.WriteByte('&')
		}
		name, _, hasValue := strings.Cut(part, "=")
		dec, err := url.QueryUnescape(name)
		if err != nil {
			dec = name
		}
		if hasValue && sensitiveParam(dec) {
			b.WriteString(name)
			b.WriteString("=" + redacted)
			continue
		}
		b.WriteString(part)
	}
	return b.String()
}
