package telemetry

import (
	"net/url"
	"strconv"
	"strings"

	"github.com/httpgateway/httpgateway/internal/httpengine"
)

// target is where an attempt goes, as the conventions name it.
type target struct {
	method   string // normalised: a known method or _OTHER
	original string // the method as given, when it is not a known one
	scheme   string // "http" or "https"
	host     string
	port     int
	url      string // url.full, redacted
}

// setMethod sets the normalised method (the conventions' known methods,
// else _OTHER with the original kept) without allocating for a method
// given in upper case.
func setMethod(t *target, m string) {
	if m == "" {
		m = "GET"
	}
	up := strings.ToUpper(m)
	switch up {
	case "GET", "POST", "PUT", "DELETE", "HEAD", "OPTIONS", "PATCH", "CONNECT", "TRACE", "QUERY":
		t.method = up
	default:
		t.method, t.original = "_OTHER", m
	}
}

// targetSource is what targetOf reads of the request options, copied at
// NewObserver (which must not keep the options), or of a redirect hop:
// the target is built only when something records it (a recording span,
// metrics, or the summary log line), so a request with nothing of that on
// parses no URL.
type targetSource struct {
	URL, Method, Protocol, Host, Hostname, Path string
	Port, DefaultPort                           int
	// Redirect: URL is the absolute URL of a redirect hop, as the engine
	// resolved it; the other fields are unused.
	Redirect bool
}

func sourceOf(o *httpengine.Options) targetSource {
	return targetSource{URL: o.URL, Method: o.Method, Protocol: o.Protocol, Host: o.Host, Hostname: o.Hostname,
		Path: o.Path, Port: o.Port, DefaultPort: o.DefaultPort}
}

// targetOf builds the target of src.
func targetOf(src *targetSource) target {
	if src.Redirect {
		return targetOfRedirect(src.URL, src.Method)
	}
	return targetOfOptions(src)
}

// targetOfOptions merges the request options the way the engine does (the
// separate fields win over the URL) into the target of the first attempt.
func targetOfOptions(o *targetSource) target {
	var t target
	setMethod(&t, o.Method)
	u, err := url.Parse(o.URL)
	if o.URL == "" || err != nil {
		u = &url.URL{}
	}
	t.scheme = strings.ToLower(u.Scheme)
	if o.Protocol != "" {
		t.scheme = strings.ToLower(strings.TrimSuffix(o.Protocol, ":"))
	}
	if t.scheme == "" {
		t.scheme = "http"
	}
	t.host = u.Hostname()
	if o.Host != "" {
		t.host = o.Host
	}
	if o.Hostname != "" {
		t.host = o.Hostname
	}
	t.host = strings.TrimSuffix(strings.TrimPrefix(t.host, "["), "]")
	if t.host == "" {
		t.host = "localhost"
	}
	def := o.DefaultPort
	if def == 0 {
		def = 80
		if t.scheme == "https" {
			def = 443
		}
	}
	t.port, _ = strconv.Atoi(u.Port())
	if o.Port != 0 {
		t.port = o.Port
	}
	if t.port == 0 {
		t.port = def
	}
	if o.Protocol == "" && o.Host == "" && o.Hostname == "" && o.Port == 0 && o.Path == "" &&
		canonical(o.URL, u, t.port, def) {
		// The common case: the URL alone, already in the form fullURL
		// builds and with nothing to redact.
		t.url = o.URL
		return t
	}
	t.url = fullURL(u, &t, def, o.Path)
	return t
}

// fullURL builds the redacted url.full of t: its scheme, host and port
// (none when it is def), and the path and query of u unless path (the
// Path option) replaces them.
func fullURL(u *url.URL, t *target, def int, path string) string {
	if path == "" {
		path = u.EscapedPath()
		if u.RawQuery != "" {
			path += "?" + u.RawQuery
		}
	}
	if path == "" {
		path = "/"
	}
	hp := t.host
	if strings.Contains(hp, ":") {
		hp = "[" + hp + "]"
	}
	full := &url.URL{Scheme: t.scheme, Host: hp + ":" + strconv.Itoa(t.port), User: u.User}
	if t.port == def {
		full.Host = hp
	}
	p, q, _ := strings.Cut(path, "?")
	full.RawPath = p
	full.Path, _ = url.PathUnescape(p)
	full.RawQuery = q
	return redactParsed(full)
}

// canonical reports whether raw, parsed as u, is already the url.full
// fullURL would build from it alone: a lower-case http(s) scheme,
// no user info, no default port written out, a path, no fragment, and no
// query parameter to redact. It allocates nothing.
func canonical(raw string, u *url.URL, port, def int) bool {
	if u.Scheme != "http" && u.Scheme != "https" || u.User != nil || u.Opaque != "" ||
		u.Fragment != "" || u.RawFragment != "" || u.ForceQuery || u.Host == "" ||
		strings.IndexByte(u.Host, '%') >= 0 {
		return false
	}
	if p := u.Port(); p != "" && (port == def || p[0] == '0') {
		return false
	}
	path := u.EscapedPath()
	if path == "" {
		return false
	}
	rest, ok := strings.CutPrefix(raw, u.Scheme)
	if !ok {
		return false
	}
	if rest, ok = strings.CutPrefix(rest, "://"); !ok {
		return false
	}
	if rest, ok = strings.CutPrefix(rest, u.Host); !ok {
		return false
	}
	if rest, ok = strings.CutPrefix(rest, path); !ok {
		return false
	}
	if u.RawQuery == "" {
		return rest == ""
	}
	return len(rest) == 1+len(u.RawQuery) && rest[0] == '?' && rest[1:] == u.RawQuery &&
		!hasSensitiveParam(u.RawQuery)
}

// targetOfRedirect is the target of the hop a redirect starts: raw is the
// engine's absolute URL for it, method the method the hop uses.
func targetOfRedirect(raw, method string) target {
	var t target
	setMethod(&t, method)
	u, err := url.Parse(raw)
	if err != nil {
		u = &url.URL{}
	}
	t.scheme = strings.ToLower(u.Scheme)
	t.host = u.Hostname()
	t.port, _ = strconv.Atoi(u.Port())
	if t.port == 0 {
		t.port = 80
		if t.scheme == "https" {
			t.port = 443
		}
	}
	if err == nil && u.User == nil && u.Fragment == "" && u.RawFragment == "" && !hasSensitiveParam(u.RawQuery) {
		t.url = raw // nothing to redact
		return t
	}
	t.url = redactParsed(u)
	return t
}
