package telemetry

import (
	"net/url"
	"testing"
)

// TestCanonicalMatchesFullURL: every URL the fast path keeps as given is
// exactly what fullURL would have built, and the URLs it must not keep
// (something to redact or normalise) are refused.
func TestCanonicalMatchesFullURL(t *testing.T) {
	for _, tt := range []struct {
		raw       string
		canonical bool
	}{
		{"http://127.0.0.1:8080/x", true},
		{"https://example.com/a/b?c=1&d=two", true},
		{"http://[::1]:9000/p%20q?x=%2F", true},
		{"http://Example.COM/Mixed/Case", true},
		{"http://h/", true},
		{"http://h:80/x", false},          // default port written out
		{"https://h:443/x", false},        // default port written out
		{"http://h:08080/x", false},       // leading zero in the port
		{"http://h", false},               // no path
		{"http://u:p@h/x", false},         // user info
		{"http://h/x#frag", false},        // fragment
		{"http://h/x?", false},            // empty query kept by Parse
		{"http://h/x?sig=abc", false},     // a signature
		{"http://h/x?a=1&Token=t", false}, // a token, any case
		{"HTTP://h/x", false},             // upper-case scheme
		{"http://[fe80::1%25eth0]:8080/x", false},
	} {
		u, err := url.Parse(tt.raw)
		if err != nil {
			t.Fatalf("%s: %v", tt.raw, err)
		}
		src := targetSource{URL: tt.raw}
		tg := targetOfOptions(&src)
		def := 80
		if tg.scheme == "https" {
			def = 443
		}
		got := canonical(tt.raw, u, tg.port, def)
		if got != tt.canonical {
			t.Errorf("canonical(%q) = %v, want %v", tt.raw, got, tt.canonical)
		}
		if want := fullURL(u, &tg, def, ""); got && want != tt.raw {
			t.Errorf("%q kept as given, but fullURL builds %q", tt.raw, want)
		}
		if got && tg.url != tt.raw {
			t.Errorf("targetOfOptions(%q).url = %q", tt.raw, tg.url)
		}
	}
}
