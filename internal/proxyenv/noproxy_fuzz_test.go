package proxyenv_test

import (
	"strings"
	"testing"

	"github.com/httpgateway/httpgateway/internal/proxyenv"
)

// FuzzParseNoProxy: parsing and matching never panic; every rule reports
// an entry of the input; `*` bypasses everything; a host listed verbatim
// (without port) is bypassed.
func FuzzParseNoProxy(f *testing.F) {
	for _, s := range []string{
		"*", "example.com", ".example.com", "*.example.com", "192.168.1.100",
		"192.168.1.1-192.168.1.100", "example.com:8080", "10.0.0.0/8", "[::1]:8080",
		"::1-::ff", "a,,b , c", "[", "-", "/", "*.", ":", "1.2.3.4-", "fe80::1%eth0",
	} {
		f.Add(s, "example.com", uint16(80))
	}
	f.Fuzz(func(t *testing.T, list, host string, port uint16) {
		rules := proxyenv.ParseNoProxy(list)
		for _, r := range rules {
			if r.Entry == "" || !strings.Contains(list, r.Entry) {
				t.Fatalf("rule entry %q not in %q", r.Entry, list)
			}
		}
		c := &proxyenv.Config{NoProxy: rules}
		r1 := c.Bypass(host, int(port))
		r2 := c.Bypass(host, int(port))
		if (r1 == nil) != (r2 == nil) {
			t.Fatal("matching is not deterministic")
		}
		star := &proxyenv.Config{NoProxy: proxyenv.ParseNoProxy(list + ",*")}
		if star.Bypass(host, int(port)) == nil {
			t.Fatal("* did not bypass")
		}
		h := strings.ToLower(strings.TrimSpace(host))
		if h != "" && !strings.ContainsAny(h, ",:[]/-*") && !strings.HasSuffix(h, ".") && !strings.HasPrefix(h, ".") {
			self := &proxyenv.Config{NoProxy: proxyenv.ParseNoProxy(h)}
			if self.Bypass(h, int(port)) == nil {
				t.Fatalf("host %q not bypassed by its own entry (%+v)", h, self.NoProxy)
			}
		}
	})
}
