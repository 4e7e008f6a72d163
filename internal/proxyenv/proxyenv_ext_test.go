package proxyenv_test

import (
	"strings"
	"testing"

	"github.com/httpgateway/httpgateway/internal/nodeerr"
	"github.com/httpgateway/httpgateway/internal/proxyenv"
)

const (
	proxyA = "http://a.proxy:3128"
	proxyB = "http://b.proxy:3128"
)

// TestPrecedence: Node's docs, "Built-in Proxy Support": for each pair
// the lower-case variable takes precedence when both are set.
func TestPrecedence(t *testing.T) {
	tests := []struct {
		name      string
		env       map[string]string
		protocol  string
		host      string
		wantProxy string // "" for direct
		wantRule  string
	}{
		{name: "nothing set", env: nil, protocol: "http:", host: "example.com"},
		{name: "HTTP_PROXY", env: map[string]string{"HTTP_PROXY": proxyA}, protocol: "http:", host: "example.com", wantProxy: proxyA},
		{name: "http_proxy", env: map[string]string{"http_proxy": proxyA}, protocol: "http:", host: "example.com", wantProxy: proxyA},
		{name: "http_proxy wins over HTTP_PROXY", env: map[string]string{"HTTP_PROXY": proxyA, "http_proxy": proxyB}, protocol: "http:", host: "example.com", wantProxy: proxyB},
		{name: "empty http_proxy is unset (Node's ||)", env: map[string]string{"HTTP_PROXY": proxyA, "http_proxy": ""}, protocol: "http:", host: "example.com", wantProxy: proxyA},
		{name: "https_proxy wins over HTTPS_PROXY", env: map[string]string{"HTTPS_PROXY": proxyA, "https_proxy": proxyB}, protocol: "https:", host: "example.com", wantProxy: proxyB},
		{name: "HTTP_PROXY does not cover https", env: map[string]string{"HTTP_PROXY": proxyA}, protocol: "https:", host: "example.com"},
		{name: "HTTPS_PROXY does not cover http", env: map[string]string{"HTTPS_PROXY": proxyA}, protocol: "http:", host: "example.com"},
		{name: "protocol without colon", env: map[string]string{"HTTPS_PROXY": proxyA}, protocol: "https", host: "example.com", wantProxy: proxyA},
		{name: "other protocols never proxied", env: map[string]string{"HTTP_PROXY": proxyA}, protocol: "ftp:", host: "example.com"},
		{name: "no_proxy wins over NO_PROXY", env: map[string]string{"HTTP_PROXY": proxyA, "NO_PROXY": "example.com", "no_proxy": "other.test"}, protocol: "http:", host: "example.com", wantProxy: proxyA},
		{name: "NO_PROXY used when no_proxy unset", env: map[string]string{"HTTP_PROXY": proxyA, "NO_PROXY": "example.com"}, protocol: "http:", host: "example.com", wantRule: "example.com"},
		{name: "no_proxy bypass", env: map[string]string{"HTTP_PROXY": proxyA, "NO_PROXY": "other.test", "no_proxy": "example.com"}, protocol: "http:", host: "example.com", wantRule: "example.com"},
		{name: "NO_PROXY without proxy decides nothing", env: map[string]string{"NO_PROXY": "*"}, protocol: "http:", host: "example.com"},
		{name: "no implicit localhost bypass", env: map[string]string{"HTTP_PROXY": proxyA}, protocol: "http:", host: "localhost", wantProxy: proxyA},
		{name: "empty host is localhost", env: map[string]string{"HTTP_PROXY": proxyA, "NO_PROXY": "localhost"}, protocol: "http:", host: "", wantRule: "localhost"},
		{name: "unrelated keys ignored", env: map[string]string{"PATH": "/bin", "Http_Proxy": "ftp://x", "HTTP_PROXY": proxyA}, protocol: "http:", host: "example.com", wantProxy: proxyA},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c, err := proxyenv.Parse(tt.env)
			if err != nil {
				t.Fatal(err)
			}
			u, rule := c.ProxyFor(tt.protocol, tt.host, 80)
			got := ""
			if u != nil {
				got = u.String()
			}
			if got != tt.wantProxy || rule != tt.wantRule {
				t.Fatalf("ProxyFor = %q, %q; want %q, %q", got, rule, tt.wantProxy, tt.wantRule)
			}
		})
	}
}

// TestNoProxyForms covers every NO_PROXY form of Node's docs, and CIDR.
func TestNoProxyForms(t *testing.T) {
	tests := []struct {
		name    string
		noProxy string
		host    string
		port    int
		bypass  bool
	}{
		// `*` - Bypass proxy for all hosts
		{"star", "*", "anything.test", 80, true},
		{"star among others", "a.test, *", "127.0.0.1", 443, true},
		// `example.com` - Exact host name match
		{"exact", "example.com", "example.com", 80, true},
		{"exact case-insensitive", "Example.COM", "EXAMPLE.com", 80, true},
		{"exact trailing dot", "example.com", "example.com.", 80, true},
		{"exact not subdomain", "example.com", "sub.example.com", 80, false},
		{"exact not other", "example.com", "example.org", 80, false},
		// `.example.com` - Domain suffix match
		{"suffix subdomain", ".example.com", "sub.example.com", 80, true},
		{"suffix deep", ".example.com", "a.b.example.com", 80, true},
		{"suffix apex", ".example.com", "example.com", 80, true},
		{"suffix label boundary", ".example.com", "badexample.com", 80, false},
		// `*.example.com` - Wildcard domain match
		{"wildcard subdomain", "*.example.com", "sub.example.com", 80, true},
		{"wildcard not apex", "*.example.com", "example.com", 80, false},
		{"wildcard label boundary", "*.example.com", "badexample.com", 80, false},
		// `192.168.1.100` - Exact IP address match
		{"ip", "192.168.1.100", "192.168.1.100", 80, true},
		{"ip other", "192.168.1.100", "192.168.1.101", 80, false},
		{"ip not by name", "127.0.0.1", "localhost", 80, false},
		{"ipv6", "::1", "::1", 80, true},
		{"ipv6 bracketed entry", "[::1]", "::1", 80, true},
		{"ipv6 bracketed host", "::1", "[::1]", 80, true},
		{"ipv6 other spelling", "0:0::1", "::1", 80, true},
		{"ipv4-mapped host", "127.0.0.1", "::ffff:127.0.0.1", 80, true},
		// `192.168.1.1-192.168.1.100` - IP address range
		{"range inside", "192.168.1.1-192.168.1.100", "192.168.1.50", 80, true},
		{"range low end", "192.168.1.1-192.168.1.100", "192.168.1.1", 80, true},
		{"range high end", "192.168.1.1-192.168.1.100", "192.168.1.100", 80, true},
		{"range outside", "192.168.1.1-192.168.1.100", "192.168.1.101", 80, false},
		{"range spaces", "192.168.1.1 - 192.168.1.100", "192.168.1.7", 80, true},
		{"range ipv6", "::1-::ff", "::a", 80, true},
		{"range ipv6 outside", "::1-::ff", "::1:0", 80, false},
		{"range family mismatch", "127.0.0.1-127.0.0.9", "::1", 80, false},
		{"range not a name", "127.0.0.1-127.0.0.9", "localhost", 80, false},
		{"dashed host name is a host", "my-host.test", "my-host.test", 80, true},
		// `example.com:8080` - Hostname with specific port
		{"host port match", "example.com:8080", "example.com", 8080, true},
		{"host port other", "example.com:8080", "example.com", 80, false},
		{"ip port", "127.0.0.1:8080", "127.0.0.1", 8080, true},
		{"ip port other", "127.0.0.1:8080", "127.0.0.1", 8081, false},
		{"ipv6 port", "[::1]:8080", "::1", 8080, true},
		{"ipv6 port other", "[::1]:8080", "::1", 80, false},
		{"suffix port", ".example.com:443", "a.example.com", 443, true},
		{"bad port never matches", "example.com:http", "example.com", 80, false},
		// CIDR, as Go's httpproxy
		{"cidr v4", "10.0.0.0/8", "10.1.2.3", 80, true},
		{"cidr v4 outside", "10.0.0.0/8", "11.0.0.1", 80, false},
		{"cidr unmasked", "127.0.0.1/8", "127.9.9.9", 80, true},
		{"cidr v6", "fd00::/8", "fd12::1", 80, true},
		{"cidr v6 outside", "fd00::/8", "fe80::1", 80, false},
		{"cidr not a name", "127.0.0.0/8", "localhost", 80, false},
		{"bad cidr never matches", "10.0.0.0/99", "10.0.0.1", 80, false},
		// list handling
		{"list first miss then hit", "a.test,b.test , c.test", "c.test", 80, true},
		{"empty entries", ",, ,", "a.test", 80, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c, err := proxyenv.Parse(map[string]string{"HTTP_PROXY": proxyA, "NO_PROXY": tt.noProxy})
			if err != nil {
				t.Fatal(err)
			}
			u, rule := c.ProxyFor("http:", tt.host, tt.port)
			if got := u == nil; got != tt.bypass {
				t.Fatalf("bypass = %v (rule %q), want %v", got, rule, tt.bypass)
			}
			if tt.bypass && rule == "" {
				t.Fatal("bypassed without a rule")
			}
			if !tt.bypass && rule != "" {
				t.Fatalf("proxied but rule %q", rule)
			}
			if tt.bypass && !strings.Contains(tt.noProxy, rule) {
				t.Fatalf("rule %q is not an entry of %q", rule, tt.noProxy)
			}
		})
	}
}

func TestRuleKinds(t *testing.T) {
	want := map[string]proxyenv.RuleKind{
		"*": proxyenv.RuleAll, "a.test": proxyenv.RuleHost, ".a.test": proxyenv.RuleSuffix,
		"*.a.test": proxyenv.RuleWildcard, "1.2.3.4": proxyenv.RuleIP, "::1": proxyenv.RuleIP,
		"1.2.3.4-1.2.3.9": proxyenv.RuleIPRange, "1.2.3.0/24": proxyenv.RuleCIDR,
		"a.test:99": proxyenv.RuleHost, "a.test:0": proxyenv.RuleInvalid, "[::1": proxyenv.RuleInvalid,
		"1.2.3.4-::1": proxyenv.RuleInvalid, ".": proxyenv.RuleInvalid,
	}
	for entry, kind := range want {
		rules := proxyenv.ParseNoProxy(entry)
		if len(rules) != 1 || rules[0].Kind != kind || rules[0].Entry != entry {
			t.Errorf("ParseNoProxy(%q) = %+v, want one %v", entry, rules, kind)
		}
	}
}

func TestParseErrors(t *testing.T) {
	tests := []struct {
		name string
		env  map[string]string
		code string
	}{
		{"socks scheme", map[string]string{"HTTP_PROXY": "socks5://p:1080"}, nodeerr.ERR_INVALID_ARG_VALUE},
		{"no scheme", map[string]string{"HTTPS_PROXY": "proxy.test:3128"}, nodeerr.ERR_INVALID_ARG_VALUE},
		{"unparsable", map[string]string{"http_proxy": "http://[::1"}, nodeerr.ERR_INVALID_URL},
		{"no host", map[string]string{"HTTP_PROXY": "http://"}, nodeerr.ERR_INVALID_URL},
		{"bad port", map[string]string{"HTTP_PROXY": "http://p:70000"}, nodeerr.ERR_INVALID_URL},
		{"CRLF", map[string]string{"HTTP_PROXY": "http://p:1\r\nX: y"}, nodeerr.ERR_INVALID_ARG_VALUE},
		{"bad URL in the lower-case key wins", map[string]string{"HTTP_PROXY": proxyA, "http_proxy": "ftp://p"}, nodeerr.ERR_INVALID_ARG_VALUE},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := proxyenv.Parse(tt.env)
			if got := nodeerr.Code(err); got != tt.code {
				t.Fatalf("error %v: code %q, want %q", err, got, tt.code)
			}
		})
	}
	// A password never appears in an error.
	_, err := proxyenv.Parse(map[string]string{"HTTP_PROXY": "socks5://user:hunter2@p:1080"})
	if err == nil || strings.Contains(err.Error(), "hunter2") {
		t.Fatalf("error %v leaks the password", err)
	}
	_, err = proxyenv.Parse(map[string]string{"HTTP_PROXY": "http://user:hunter2@[::1"})
	if err == nil || strings.Contains(err.Error(), "hunter2") {
		t.Fatalf("error %v leaks the password", err)
	}
}

func TestHostPort(t *testing.T) {
	for raw, want := range map[string]string{
		"http://p.test": "p.test 80", "https://p.test": "p.test 443",
		"http://p.test:3128": "p.test 3128", "https://[::1]:8443": "::1 8443",
	} {
		u, err := proxyenv.ParseProxyURL("HTTP_PROXY", raw)
		if err != nil {
			t.Fatal(err)
		}
		h, p := proxyenv.HostPort(u)
		if got := h + " " + itoa(p); got != want {
			t.Errorf("HostPort(%s) = %s, want %s", raw, got, want)
		}
	}
}

func itoa(n int) string {
	b := []byte{}
	for {
		b = append([]byte{byte('0' + n%10)}, b...)
		n /= 10
		if n == 0 {
			return string(b)
		}
	}
}
