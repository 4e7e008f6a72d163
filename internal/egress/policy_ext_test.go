package egress_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"log/slog"
	"maps"
	"net/netip"
	"strings"
	"sync"
	"testing"

	"github.com/httpgateway/httpgateway/internal/egress"
	"github.com/httpgateway/httpgateway/internal/nodeerr"
)

const (
	publicV4 = "93.184.215.14"
	publicV6 = "2606:2800:21f:cb07:6820:80da:af6b:8b2c"
)

// The "done when" list, each denied with the rule named, against
// the default policy with the gateway listening on 127.0.0.1:50051 and
// [::]:50052 (this host also being 192.0.2.10).
func TestBypassFormsDenied(t *testing.T) {
	p := mustPolicy(t, egress.Options{
		SelfAddrs:      []netip.AddrPort{netip.MustParseAddrPort("127.0.0.1:50051"), netip.MustParseAddrPort("[::]:50052")},
		InterfaceAddrs: func() ([]netip.Addr, error) { return []netip.Addr{netip.MustParseAddr("192.0.2.10")}, nil },
	})
	res := egress.NewResolver(newFakeResolver(map[string][][]string{
		"localhost":                {{"127.0.0.1", "::1"}},
		"metadata.google.internal": {{"169.254.169.254"}},
		"mapped.example":           {{"::ffff:10.0.0.1"}},
		"aws6.example":             {{"fd00:ec2::254"}},
	}))
	tests := []struct {
		name string
		host string
		port uint16
		rule string
	}{
		{name: "short dotted 127.1", host: "127.1", rule: "default-deny:loopback 127.0.0.0/8"},
		{name: "three parts 127.0.1", host: "127.0.1", rule: "default-deny:loopback 127.0.0.0/8"},
		{name: "decimal 2130706433", host: "2130706433", rule: "default-deny:loopback 127.0.0.0/8"},
		{name: "hex 0x7f000001", host: "0x7f000001", rule: "default-deny:loopback 127.0.0.0/8"},
		{name: "octal 0177.0.0.1", host: "0177.0.0.1", rule: "default-deny:loopback 127.0.0.0/8"},
		{name: "trailing dot 127.0.0.1.", host: "127.0.0.1.", rule: "default-deny:loopback 127.0.0.0/8"},
		{name: "full-width digits", host: "１２７.０.０.１", rule: "default-deny:loopback 127.0.0.0/8"},
		{name: "bracketed mapped [::ffff:127.0.0.1]", host: "[::ffff:127.0.0.1]", rule: "default-deny:loopback 127.0.0.0/8"},
		{name: "mapped ::ffff:127.0.0.1", host: "::ffff:127.0.0.1", rule: "default-deny:loopback 127.0.0.0/8"},
		{name: "mapped metadata [::ffff:a9fe:a9fe]", host: "[::ffff:a9fe:a9fe]", rule: "default-deny:link-local 169.254.0.0/16"},
		{name: "NAT64 64:ff9b::a00:1", host: "64:ff9b::a00:1", rule: "default-deny:private 10.0.0.0/8 via nat64 64:ff9b::/96"},
		{name: "NAT64 metadata", host: "64:ff9b::a9fe:a9fe", rule: "default-deny:link-local 169.254.0.0/16 via nat64 64:ff9b::/96"},
		{name: "NAT64 local-use prefix", host: "64:ff9b:1:a00:0:100::", rule: "default-deny:nat64-local 64:ff9b:1::/48"},
		{name: "6to4 2002:a00:1::1", host: "2002:a00:1::1", rule: "default-deny:private 10.0.0.0/8 via 6to4 2002::/16"},
		{name: "6to4 loopback", host: "2002:7f00:1::1", rule: "default-deny:loopback 127.0.0.0/8 via 6to4 2002::/16"},
		{name: "Teredo client 127.0.0.1", host: "2001:0:4136:e378::80ff:fffe", rule: "default-deny:loopback 127.0.0.0/8 via teredo-client 2001::/32"},
		{name: "Teredo server 10.0.0.1", host: "2001:0:a00:1::", rule: "default-deny:private 10.0.0.0/8 via teredo-server 2001::/32"},
		{name: "IPv4-compatible ::a00:1", host: "::a00:1", rule: "default-deny:ipv4-compatible ::/96"},
		{name: "IPv4-translated", host: "::ffff:0:a00:1", rule: "default-deny:ipv4-translated ::ffff:0:0:0/96"},
		{name: "CGNAT 100.64.0.1", host: "100.64.0.1", rule: "default-deny:cgnat 100.64.0.0/10"},
		{name: "metadata 169.254.169.254", host: "169.254.169.254", rule: "default-deny:link-local 169.254.0.0/16"},
		{name: "metadata by name", host: "metadata.google.internal", rule: "default-deny:link-local 169.254.0.0/16"},
		{name: "Azure wireserver", host: "168.63.129.16", rule: "default-deny:azure-wireserver 168.63.129.16/32"},
		{name: "AWS IPv6 metadata", host: "aws6.example", rule: "default-deny:unique-local fc00::/7"},
		{name: "localhost", host: "localhost", rule: "default-deny:loopback 127.0.0.0/8"},
		{name: "resolver returns mapped private", host: "mapped.example", rule: "default-deny:private 10.0.0.0/8"},
		{name: "unspecified 0.0.0.0", host: "0.0.0.0", rule: "default-deny:this-network 0.0.0.0/8"},
		{name: "decimal 0", host: "0", rule: "default-deny:this-network 0.0.0.0/8"},
		{name: "unspecified ::", host: "::", rule: "default-deny:unspecified ::/128"},
		{name: "loopback ::1", host: "[::1]", rule: "default-deny:loopback ::1/128"},
		{name: "link-local with zone", host: "fe80::1%eth0", rule: "default-deny:link-local fe80::/10"},
		{name: "private 10/8", host: "10.0.0.1", rule: "default-deny:private 10.0.0.0/8"},
		{name: "private 172.16/12", host: "172.31.255.255", rule: "default-deny:private 172.16.0.0/12"},
		{name: "private 192.168/16", host: "0xc0a80001", rule: "default-deny:private 192.168.0.0/16"},
		{name: "benchmarking", host: "198.18.0.1", rule: "default-deny:benchmarking 198.18.0.0/15"},
		{name: "multicast v4", host: "224.0.0.1", rule: "default-deny:multicast 224.0.0.0/4"},
		{name: "multicast v6", host: "ff02::1", rule: "default-deny:multicast ff00::/8"},
		{name: "broadcast", host: "255.255.255.255", rule: "default-deny:broadcast 255.255.255.255/32"},
		{name: "reserved", host: "240.0.0.1", rule: "default-deny:reserved 240.0.0.0/4"},
		{name: "unique-local", host: "fd12::1", rule: "default-deny:unique-local fc00::/7"},
		{name: "discard", host: "100::1", rule: "default-deny:discard 100::/64"},
		{name: "documentation", host: "2001:db8::1", rule: "default-deny:documentation 2001:db8::/32"},
		{name: "gateway's own port", host: "127.0.0.1", port: 50051, rule: "self:127.0.0.1:50051"},
		{name: "gateway's own port as 127.1", host: "127.1", port: 50051, rule: "self:127.0.0.1:50051"},
		{name: "gateway's dual-stack port on ::1", host: "::1", port: 50052, rule: "self:[::]:50052"},
		{name: "gateway's dual-stack port on 127.0.0.5", host: "127.0.0.5", port: 50052, rule: "self:[::]:50052"},
		{name: "gateway's port on an interface address", host: "192.0.2.10", port: 50052, rule: "self:[::]:50052"},
		{name: "gateway's port on 0.0.0.0", host: "0.0.0.0", port: 50051, rule: "self:127.0.0.1:50051"},
		{name: "gateway's port through NAT64", host: "64:ff9b::7f00:1", port: 50051, rule: "self:127.0.0.1:50051"},
		{name: "number past 32 bits", host: "4294967296", rule: "invalid-host"},
		{name: "bad octal", host: "08.0.0.1", rule: "invalid-host"},
		{name: "five parts", host: "1.2.3.4.5", rule: "invalid-host"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			port := tt.port
			if port == 0 {
				port = 80
			}
			var d egress.Decision
			if tt.rule == "invalid-host" {
				// No resolver answers these; the pool never dials them.
				d = p.Decide(tt.host, netip.AddrPortFrom(netip.MustParseAddr(publicV4), port))
			} else {
				d = dialDecision(t, p, res, tt.host, port)
			}
			if d.Allowed || d.Rule != tt.rule {
				t.Fatalf("%s:%d: allowed=%t rule %q (%s), want denied by %q", tt.host, port, d.Allowed, d.Rule, d.Reason, tt.rule)
			}
		})
	}
}

// The neighbours of the denied forms pass: one address outside each range,
// public addresses behind embeddings, and other ports of the gateway's host.
func TestNeighboursAllowed(t *testing.T) {
	p := mustPolicy(t, egress.Options{
		Allow:     []string{"127.0.0.1"},
		SelfAddrs: []netip.AddrPort{netip.MustParseAddrPort("127.0.0.1:50051")},
	})
	res := egress.NewResolver(newFakeResolver(map[string][][]string{
		"example.com": {{publicV4, publicV6}},
	}))
	tests := []struct {
		name string
		host string
		port uint16
		rule string
	}{
		{name: "public v4", host: "8.8.8.8", rule: "default-allow"},
		{name: "public v6", host: "2001:4860:4860::8888", rule: "default-allow"},
		{name: "name with public addresses", host: "example.com", rule: "default-allow"},
		{name: "above loopback", host: "128.0.0.1", rule: "default-allow"},
		{name: "decimal above loopback", host: "2147483649", rule: "default-allow"},
		{name: "hex above loopback", host: "0x80000001", rule: "default-allow"},
		{name: "below loopback", host: "126.255.255.255", rule: "default-allow"},
		{name: "below CGNAT", host: "100.63.255.255", rule: "default-allow"},
		{name: "above CGNAT", host: "100.128.0.1", rule: "default-allow"},
		{name: "below link-local", host: "169.253.255.255", rule: "default-allow"},
		{name: "above link-local", host: "169.255.0.1", rule: "default-allow"},
		{name: "below 172.16/12", host: "172.15.255.255", rule: "default-allow"},
		{name: "above 172.16/12", host: "172.32.0.1", rule: "default-allow"},
		{name: "above 10/8", host: "11.0.0.1", rule: "default-allow"},
		{name: "above 192.168/16", host: "192.169.0.1", rule: "default-allow"},
		{name: "mapped public", host: "[::ffff:8.8.8.8]", rule: "default-allow"},
		{name: "NAT64 of a public address", host: "64:ff9b::808:808", rule: "default-allow"},
		{name: "6to4 of a public address", host: "2002:808:808::1", rule: "default-allow"},
		{name: "Teredo of public addresses", host: "2001:0:4136:e378:8000:63bf:f7f7:f7f7", rule: "default-allow"},
		{name: "allowed loopback, other port", host: "127.0.0.1", port: 50050, rule: "allow:127.0.0.1"},
		{name: "allowed loopback as 127.1", host: "127.1", port: 8080, rule: "allow:127.0.0.1"},
		{name: "allowed loopback, mapped", host: "::ffff:127.0.0.1", port: 8080, rule: "allow:127.0.0.1"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			port := tt.port
			if port == 0 {
				port = 443
			}
			d := dialDecision(t, p, res, tt.host, port)
			if !d.Allowed || d.Rule != tt.rule {
				t.Fatalf("%s:%d: allowed=%t rule %q (%s), want allowed by %q", tt.host, port, d.Allowed, d.Rule, d.Reason, tt.rule)
			}
		})
	}
}

func TestPrecedence(t *testing.T) {
	tests := []struct {
		name    string
		opts    egress.Options
		host    string
		addr    string // what the host resolved to
		allowed bool
		rule    string
	}{
		{name: "deny beats allow", opts: egress.Options{Allow: []string{"10.0.0.0/8"}, Deny: []string{"10.1.0.0/16"}},
			host: "svc.example", addr: "10.1.2.3:80", rule: "deny:10.1.0.0/16"},
		{name: "allow outside the deny", opts: egress.Options{Allow: []string{"10.0.0.0/8"}, Deny: []string{"10.1.0.0/16"}},
			host: "svc.example", addr: "10.2.0.1:80", allowed: true, rule: "allow:10.0.0.0/8"},
		{name: "deny by host beats an address allow", opts: egress.Options{Allow: []string{"10.0.0.0/8"}, Deny: []string{"*.internal.example"}},
			host: "vault.internal.example", addr: "10.0.0.1:80", rule: "deny:*.internal.example"},
		{name: "self beats allow", opts: egress.Options{Allow: []string{"127.0.0.0/8"}, SelfAddrs: []netip.AddrPort{netip.MustParseAddrPort("127.0.0.1:50051")}},
			host: "127.0.0.1", addr: "127.0.0.1:50051", rule: "self:127.0.0.1:50051"},
		{name: "self admin listener beats allow", opts: egress.Options{Allow: []string{"0.0.0.0/0"}, SelfAddrs: []netip.AddrPort{netip.MustParseAddrPort("127.0.0.1:9090")}},
			host: "localhost", addr: "127.0.0.1:9090", rule: "self:127.0.0.1:9090"},
		{name: "host allow does not open metadata", opts: egress.Options{Allow: []string{"*.example.com"}},
			host: "evil.example.com", addr: "169.254.169.254:80", rule: "default-deny:link-local 169.254.0.0/16"},
		{name: "host allow does not open loopback", opts: egress.Options{Allow: []string{"*.example.com"}},
			host: "evil.example.com", addr: "127.0.0.1:80", rule: "default-deny:loopback 127.0.0.0/8"},
		{name: "host allow, public address", opts: egress.Options{Allow: []string{"*.example.com"}},
			host: "API.Example.COM.", addr: publicV4 + ":443", allowed: true, rule: "allow:*.example.com"},
		{name: "wildcard does not match the apex", opts: egress.Options{Allow: []string{"*.example.com"}},
			host: "example.com", addr: publicV4 + ":443", allowed: true, rule: "default-allow"},
		{name: "exact host allow", opts: egress.Options{Allow: []string{"example.com"}},
			host: "example.com", addr: publicV4 + ":443", allowed: true, rule: "allow:example.com"},
		{name: "pinned host opens its range", opts: egress.Options{Allow: []string{"db.internal.example:5432@10.1.2.0/24"}},
			host: "db.internal.example", addr: "10.1.2.3:5432", allowed: true, rule: "allow:db.internal.example:5432@10.1.2.0/24"},
		{name: "pinned host outside its range", opts: egress.Options{Allow: []string{"db.internal.example:5432@10.1.2.0/24"}},
			host: "db.internal.example", addr: "10.1.3.1:5432", rule: "default-deny:private 10.0.0.0/8"},
		{name: "pinned host on another port", opts: egress.Options{Allow: []string{"db.internal.example:5432@10.1.2.0/24"}},
			host: "db.internal.example", addr: "10.1.2.3:22", rule: "default-deny:private 10.0.0.0/8"},
		{name: "pinned range for another host", opts: egress.Options{Allow: []string{"db.internal.example:5432@10.1.2.0/24"}},
			host: "other.internal.example", addr: "10.1.2.3:5432", rule: "default-deny:private 10.0.0.0/8"},
		{name: "deny host normalised: case and dot", opts: egress.Options{Deny: []string{"*.internal.example"}},
			host: "API.Internal.Example.", addr: publicV4 + ":443", rule: "deny:*.internal.example"},
		{name: "deny host normalised: IDN", opts: egress.Options{Deny: []string{"xn--bcher-kva.example"}},
			host: "BÜCHER.example", addr: publicV4 + ":443", rule: "deny:xn--bcher-kva.example"},
		{name: "deny host normalised: full-width", opts: egress.Options{Deny: []string{"*.internal.example"}},
			host: "ａｐｉ．ｉｎｔｅｒｎａｌ．ｅｘａｍｐｌｅ", addr: publicV4 + ":443", rule: "deny:*.internal.example"},
		{name: "deny host rule ignores IP literals", opts: egress.Options{Deny: []string{"*.example.com"}},
			host: "8.8.8.8", addr: "8.8.8.8:443", allowed: true, rule: "default-allow"},
		{name: "deny port v4", opts: egress.Options{Deny: []string{"0.0.0.0/0:25", "[::/0]:25"}},
			host: "smtp.example", addr: publicV4 + ":25", rule: "deny:0.0.0.0/0:25"},
		{name: "deny port v6", opts: egress.Options{Deny: []string{"0.0.0.0/0:25", "[::/0]:25"}},
			host: "smtp.example", addr: "[" + publicV6 + "]:25", rule: "deny:[::/0]:25"},
		{name: "deny port, other port", opts: egress.Options{Deny: []string{"0.0.0.0/0:25", "[::/0]:25"}},
			host: "smtp.example", addr: publicV4 + ":587", allowed: true, rule: "default-allow"},
		{name: "port-scoped allow", opts: egress.Options{Allow: []string{"10.0.0.0/8:443"}},
			host: "svc", addr: "10.0.0.1:443", allowed: true, rule: "allow:10.0.0.0/8:443"},
		{name: "port-scoped allow, other port", opts: egress.Options{Allow: []string{"10.0.0.0/8:443"}},
			host: "svc", addr: "10.0.0.1:22", rule: "default-deny:private 10.0.0.0/8"},
		{name: "deny matches embedded address", opts: egress.Options{Deny: []string{"8.8.8.0/24"}},
			host: "64:ff9b::808:808", addr: "[64:ff9b::808:808]:443", rule: "deny:8.8.8.0/24"},
		{name: "deny matches mapped address", opts: egress.Options{Deny: []string{"8.8.8.0/24"}},
			host: "x.example", addr: "[::ffff:8.8.8.8]:443", rule: "deny:8.8.8.0/24"},
		{name: "NAT64 allow does not open embedded metadata", opts: egress.Options{Allow: []string{"64:ff9b::/96"}},
			host: "x.example", addr: "[64:ff9b::a9fe:a9fe]:80", rule: "default-deny:link-local 169.254.0.0/16 via nat64 64:ff9b::/96"},
		{name: "v4 allow does not open its NAT64 form", opts: egress.Options{Allow: []string{"10.0.0.0/8"}},
			host: "x.example", addr: "[64:ff9b::a00:1]:80", rule: "default-deny:private 10.0.0.0/8 via nat64 64:ff9b::/96"},
		{name: "NAT64 and v4 allows together", opts: egress.Options{Allow: []string{"10.0.0.0/8", "64:ff9b::/96"}},
			host: "x.example", addr: "[64:ff9b::a00:1]:80", allowed: true, rule: "allow:64:ff9b::/96"},
		{name: "allow matches the unmapped address", opts: egress.Options{Allow: []string{"127.0.0.1"}},
			host: "::ffff:127.0.0.1", addr: "[::ffff:127.0.0.1]:80", allowed: true, rule: "allow:127.0.0.1"},
		{name: "invalid host is denied", opts: egress.Options{Allow: []string{"0.0.0.0/0"}},
			host: "1.2.3.4.5", addr: "1.2.3.4:80", rule: "invalid-host"},
		{name: "NUL does not dodge a host deny", opts: egress.Options{Deny: []string{"*.internal.example"}},
			host: "evil.internal.example\x00", addr: publicV4 + ":80", rule: "invalid-host"},
		{name: "empty host is denied", opts: egress.Options{},
			host: "", addr: publicV4 + ":80", rule: "invalid-host"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p := mustPolicy(t, tt.opts)
			d := p.Decide(tt.host, netip.MustParseAddrPort(tt.addr))
			if d.Allowed != tt.allowed || d.Rule != tt.rule {
				t.Fatalf("Decide(%q, %s) = allowed %t rule %q (%s), want allowed %t rule %q",
					tt.host, tt.addr, d.Allowed, d.Rule, d.Reason, tt.allowed, tt.rule)
			}
		})
	}
}

func TestCheckError(t *testing.T) {
	p := mustPolicy(t, egress.Options{})
	err := p.Check(context.Background(), "LocalHost.", netip.MustParseAddrPort("[::ffff:127.0.0.1]:8080"))
	ne := nodeerr.As(err)
	if ne == nil {
		t.Fatalf("Check = %v (%T), want a *nodeerr.Error", err, err)
	}
	const msg = "egress denied by rule default-deny:loopback 127.0.0.0/8: localhost (127.0.0.1:8080)"
	if ne.Code != nodeerr.ERR_GATEWAY_EGRESS_DENIED || ne.Message != msg || ne.Address != "127.0.0.1" || ne.Port != 8080 {
		t.Fatalf("error = %+v, want code %s message %q at 127.0.0.1:8080", ne, nodeerr.ERR_GATEWAY_EGRESS_DENIED, msg)
	}
	var de *egress.DeniedError
	if !errors.As(err, &de) || de.Decision.Rule != "default-deny:loopback 127.0.0.0/8" {
		t.Fatalf("errors.As DeniedError: %v", de)
	}
	d, ok := egress.DecisionOf(err)
	if !ok {
		t.Fatal("DecisionOf found nothing")
	}
	want := map[string]string{"rule": "default-deny:loopback 127.0.0.0/8", "host": "localhost",
		"address": "127.0.0.1", "port": "8080", "mode": "enforce"}
	if got := d.Metadata(); !maps.Equal(got, want) {
		t.Fatalf("Metadata = %v, want %v", got, want)
	}
	if err := p.Check(context.Background(), "example.com", netip.MustParseAddrPort(publicV4+":443")); err != nil {
		t.Fatalf("public: %v", err)
	}
	if _, ok := egress.DecisionOf(errors.New("other")); ok {
		t.Fatal("DecisionOf of an unrelated error")
	}
}

// logRecords captures JSON log records.
type logRecords struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (l *logRecords) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.buf.Write(p)
}

func (l *logRecords) records(t *testing.T) []map[string]any {
	t.Helper()
	l.mu.Lock()
	defer l.mu.Unlock()
	var out []map[string]any
	for line := range strings.SplitSeq(strings.TrimSpace(l.buf.String()), "\n") {
		if line == "" {
			continue
		}
		var m map[string]any
		if err := json.Unmarshal([]byte(line), &m); err != nil {
			t.Fatalf("log line %q: %v", line, err)
		}
		delete(m, "time")
		out = append(out, m)
	}
	return out
}

func TestModesLogAndReport(t *testing.T) {
	tests := []struct {
		name    string
		mode    egress.Mode
		wantErr bool
		msg     string
	}{
		{name: "enforce", mode: egress.Enforce, wantErr: true, msg: "egress denied"},
		{name: "default is enforce", mode: egress.ModeUnset, wantErr: true, msg: "egress denied"},
		{name: "report-only", mode: egress.ReportOnly, msg: "egress would be denied (report-only)"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var logs logRecords
			var mu sync.Mutex
			var seen []egress.Decision
			p := mustPolicy(t, egress.Options{
				Mode:   tt.mode,
				Logger: slog.New(slog.NewJSONHandler(&logs, &slog.HandlerOptions{Level: slog.LevelDebug})),
				OnDecision: func(_ context.Context, d egress.Decision) {
					mu.Lock()
					seen = append(seen, d)
					mu.Unlock()
				},
			})
			err := p.Check(context.Background(), "metadata.google.internal", netip.MustParseAddrPort("169.254.169.254:80"))
			if (err != nil) != tt.wantErr {
				t.Fatalf("Check = %v, want error %t", err, tt.wantErr)
			}
			if err := p.Check(context.Background(), "example.com", netip.MustParseAddrPort(publicV4+":443")); err != nil {
				t.Fatal(err)
			}
			mode := "enforce"
			if tt.mode == egress.ReportOnly {
				mode = "report-only"
			}
			want := []map[string]any{
				{"level": "WARN", "msg": tt.msg, "host": "metadata.google.internal", "ip": "169.254.169.254", "port": float64(80),
					"rule": "default-deny:link-local 169.254.0.0/16", "reason": "169.254.169.254 is link-local", "mode": mode, "allowed": false},
				{"level": "DEBUG", "msg": "egress allowed", "host": "example.com", "ip": publicV4, "port": float64(443),
					"rule": "default-allow", "reason": "public address", "mode": mode, "allowed": true},
			}
			got := logs.records(t)
			if len(got) != len(want) {
				t.Fatalf("logged %v, want %v", got, want)
			}
			for i := range want {
				if !maps.Equal(got[i], want[i]) {
					t.Errorf("record %d = %v, want %v", i, got[i], want[i])
				}
			}
			mu.Lock()
			defer mu.Unlock()
			if len(seen) != 2 || seen[0].Allowed || !seen[1].Allowed || seen[0].Mode.String() != mode {
				t.Fatalf("OnDecision saw %+v", seen)
			}
		})
	}
}

func TestRoles(t *testing.T) {
	base := mustPolicy(t, egress.Options{Allow: []string{"10.0.0.0/8"}, Deny: []string{"*.blocked.example"}})
	ci, err := base.ForRole(egress.Role{Name: "ci", Allow: []string{"*.example.com:443", "10.9.0.0/16:5432"}, AllowListOnly: true})
	if err != nil {
		t.Fatal(err)
	}
	dev, err := base.ForRole(egress.Role{Name: "dev", Allow: []string{"127.0.0.1"}, Deny: []string{"8.8.8.8"}, Mode: egress.ReportOnly})
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name    string
		p       *egress.Policy
		host    string
		addr    string
		allowed bool
		rule    string
	}{
		{name: "ci: allow-listed host", p: ci, host: "api.example.com", addr: publicV4 + ":443", allowed: true, rule: "role:ci:allow:*.example.com:443"},
		{name: "ci: CONNECT to a port not in the allow list", p: ci, host: "api.example.com", addr: publicV4 + ":25", rule: "not-in-allow-list:role ci"},
		{name: "ci: public host not in the allow list", p: ci, host: "other.org", addr: publicV4 + ":443", rule: "not-in-allow-list:role ci"},
		{name: "ci: base allow not inherited", p: ci, host: "svc", addr: "10.1.0.1:443", rule: "default-deny:private 10.0.0.0/8"},
		{name: "ci: own address allow", p: ci, host: "pg", addr: "10.9.0.1:5432", allowed: true, rule: "role:ci:allow:10.9.0.0/16:5432"},
		{name: "ci: host allow does not open private", p: ci, host: "evil.example.com", addr: "10.9.0.1:443", rule: "default-deny:private 10.0.0.0/8"},
		{name: "ci: base deny inherited", p: ci, host: "x.blocked.example", addr: publicV4 + ":443", rule: "deny:*.blocked.example"},
		{name: "dev: own deny (report-only)", p: dev, host: "dns.google", addr: "8.8.8.8:443", rule: "role:dev:deny:8.8.8.8"},
		{name: "dev: base allow inherited", p: dev, host: "svc", addr: "10.0.0.1:80", allowed: true, rule: "allow:10.0.0.0/8"},
		{name: "dev: own allow", p: dev, host: "localhost", addr: "127.0.0.1:3000", allowed: true, rule: "role:dev:allow:127.0.0.1"},
		{name: "dev: public", p: dev, host: "example.com", addr: publicV4 + ":443", allowed: true, rule: "default-allow"},
		{name: "base unchanged", p: base, host: "localhost", addr: "127.0.0.1:3000", rule: "default-deny:loopback 127.0.0.0/8"},
		{name: "base: other.org", p: base, host: "other.org", addr: publicV4 + ":443", allowed: true, rule: "default-allow"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			d := tt.p.Decide(tt.host, netip.MustParseAddrPort(tt.addr))
			if d.Allowed != tt.allowed || d.Rule != tt.rule || d.Role != tt.p.Role() {
				t.Fatalf("Decide = %+v, want allowed %t rule %q role %q", d, tt.allowed, tt.rule, tt.p.Role())
			}
			err := tt.p.Check(context.Background(), tt.host, netip.MustParseAddrPort(tt.addr))
			wantErr := !tt.allowed && tt.p.Mode() == egress.Enforce
			if (err != nil) != wantErr {
				t.Fatalf("Check = %v, want error %t", err, wantErr)
			}
			if err != nil {
				if d, _ := egress.DecisionOf(err); d.Metadata()["role"] != tt.p.Role() && tt.p.Role() != "" {
					t.Fatalf("metadata %v lacks role", d.Metadata())
				}
			}
		})
	}
}

func TestForRoleErrors(t *testing.T) {
	base := mustPolicy(t, egress.Options{})
	tests := []struct {
		name string
		role egress.Role
		want string
	}{
		{name: "no name", role: egress.Role{}, want: "needs a name"},
		{name: "bad allow", role: egress.Role{Name: "r", Allow: []string{"10.0.0.1/8"}}, want: `role "r" allow entry 1`},
		{name: "bad deny", role: egress.Role{Name: "r", Deny: []string{"ok.example", "a*b"}}, want: `role "r" deny entry 2`},
		{name: "bad socket path", role: egress.Role{Name: "r", SocketPaths: []string{"rel.sock"}}, want: "absolute, clean"},
		{name: "bad mode", role: egress.Role{Name: "r", Mode: 7}, want: "not a Mode"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := base.ForRole(tt.role)
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("ForRole = %v, want error containing %q", err, tt.want)
			}
		})
	}
	r, err := base.ForRole(egress.Role{Name: "a"})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := r.ForRole(egress.Role{Name: "b"}); err == nil {
		t.Fatal("a role's policy derived another role")
	}
}

func TestNewErrors(t *testing.T) {
	tests := []struct {
		name string
		opts egress.Options
		want string
	}{
		{name: "CIDR with host bits", opts: egress.Options{Allow: []string{"10.0.0.1/8"}}, want: "egress-allow entry 1"},
		{name: "bad deny", opts: egress.Options{Deny: []string{"*.ok.example", "[::1"}}, want: "egress-deny entry 2"},
		{name: "pin without host", opts: egress.Options{Allow: []string{"10.0.0.0/8@10.0.0.0/8"}}, want: "HOST[:PORT]@CIDR"},
		{name: "pin to a host", opts: egress.Options{Allow: []string{"a.example@b.example"}}, want: "HOST[:PORT]@CIDR"},
		{name: "pin with port on the CIDR", opts: egress.Options{Allow: []string{"a.example@10.0.0.0/8:443"}}, want: "HOST[:PORT]@CIDR"},
		{name: "self without port", opts: egress.Options{SelfAddrs: []netip.AddrPort{netip.AddrPortFrom(netip.MustParseAddr("127.0.0.1"), 0)}}, want: "with a port"},
		{name: "relative socket path", opts: egress.Options{SocketPaths: []string{"app.sock"}}, want: "absolute, clean"},
		{name: "unclean socket path", opts: egress.Options{SocketPaths: []string{"/run/../app.sock"}}, want: "absolute, clean"},
		{name: "bad mode", opts: egress.Options{Mode: 9}, want: "not a Mode"},
		{name: "interface addresses fail", opts: egress.Options{SelfAddrs: []netip.AddrPort{netip.MustParseAddrPort("[::]:1")},
			InterfaceAddrs: func() ([]netip.Addr, error) { return nil, errors.New("boom") }}, want: "boom"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := egress.New(tt.opts)
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("New = %v, want error containing %q", err, tt.want)
			}
		})
	}
}

// A name that resolves to a public address on one lookup and to loopback
// on the next: each lookup's answer is checked as it is dialed, so the
// second is denied. Public addresses here are only checked, never dialed.
func TestRebindingEachLookupChecked(t *testing.T) {
	p := mustPolicy(t, egress.Options{})
	fake := newFakeResolver(map[string][][]string{
		"rebind.example": {{publicV4}, {"127.0.0.1"}, {publicV4, "10.0.0.1"}},
	})
	res := egress.NewResolver(fake)
	steps := []struct {
		name    string
		allowed bool
		rule    string
	}{
		{name: "first lookup: public", allowed: true, rule: "default-allow"},
		{name: "second lookup: loopback", rule: "default-deny:loopback 127.0.0.0/8"},
		{name: "third lookup: public and private", rule: "default-deny:private 10.0.0.0/8"},
	}
	for _, st := range steps {
		t.Run(st.name, func(t *testing.T) {
			d := dialDecision(t, p, res, "rebind.example", 443)
			if d.Allowed != st.allowed || d.Rule != st.rule {
				t.Fatalf("decision %+v, want allowed %t rule %q", d, st.allowed, st.rule)
			}
		})
	}
	if got := fake.lookedUp(); len(got) != 3 {
		t.Fatalf("lookups %v, want one per dial", got)
	}
}

// Every hop of a request (first dial, redirect, proxy, CONNECT target) is a
// Check of its own; an allowed hop does not open the next one.
func TestHopsCheckedIndependently(t *testing.T) {
	p := mustPolicy(t, egress.Options{
		Deny:      []string{"*.internal.example", "0.0.0.0/0:25", "[::/0]:25"},
		SelfAddrs: []netip.AddrPort{netip.MustParseAddrPort("127.0.0.1:50051")},
	})
	res := egress.NewResolver(newFakeResolver(map[string][][]string{
		"www.example.com":        {{publicV4}},
		"admin.internal.example": {{publicV4}},
		"smtp.example.com":       {{publicV4}},
		"proxy.example.com":      {{publicV6}},
	}))
	hops := []struct {
		name    string
		host    string
		port    uint16
		allowed bool
		rule    string
	}{
		{name: "first request", host: "www.example.com", port: 443, allowed: true, rule: "default-allow"},
		{name: "redirect to a denied host", host: "admin.internal.example", port: 443, rule: "deny:*.internal.example"},
		{name: "redirect to metadata", host: "169.254.169.254", port: 80, rule: "default-deny:link-local 169.254.0.0/16"},
		{name: "redirect to the gateway itself", host: "0x7f000001", port: 50051, rule: "self:127.0.0.1:50051"},
		{name: "redirect back to an allowed host", host: "www.example.com", port: 443, allowed: true, rule: "default-allow"},
		{name: "proxy hop", host: "proxy.example.com", port: 3128, allowed: true, rule: "default-allow"},
		{name: "CONNECT to a denied port", host: "smtp.example.com", port: 25, rule: "deny:0.0.0.0/0:25"},
		{name: "upgrade on an allowed host", host: "www.example.com", port: 80, allowed: true, rule: "default-allow"},
	}
	for _, h := range hops {
		t.Run(h.name, func(t *testing.T) {
			d := dialDecision(t, p, res, h.host, h.port)
			if d.Allowed != h.allowed || d.Rule != h.rule {
				t.Fatalf("decision %+v, want allowed %t rule %q", d, h.allowed, h.rule)
			}
		})
	}
}

// CheckName is for a target the proxy resolves (CONNECT or absolute-form
// through a proxy).
func TestCheckName(t *testing.T) {
	p := mustPolicy(t, egress.Options{Deny: []string{"0.0.0.0/0:25", "[::/0]:25"}})
	fake := newFakeResolver(map[string][][]string{
		"smtp.example.com": {{publicV4}},
		"www.example.com":  {{publicV4, publicV6}},
		"dual.example.com": {{publicV4, "10.0.0.1"}},
	})
	tests := []struct {
		name string
		host string
		port uint16
		rule string // "" = allowed
	}{
		{name: "allowed", host: "www.example.com", port: 443},
		{name: "CONNECT to a denied port", host: "smtp.example.com", port: 25, rule: "deny:0.0.0.0/0:25"},
		{name: "one private answer", host: "dual.example.com", port: 443, rule: "default-deny:private 10.0.0.0/8"},
		{name: "numeric loopback", host: "127.1", port: 443, rule: "default-deny:loopback 127.0.0.0/8"},
		{name: "bracketed metadata", host: "[::ffff:169.254.169.254]", port: 80, rule: "default-deny:link-local 169.254.0.0/16"},
		{name: "unresolvable here", host: "nowhere.example", port: 443, rule: "unresolved"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := p.CheckName(context.Background(), tt.host, tt.port, fake)
			d, denied := egress.DecisionOf(err)
			if tt.rule == "" {
				if err != nil {
					t.Fatalf("CheckName = %v", err)
				}
				return
			}
			if !denied || d.Rule != tt.rule || nodeerr.Code(err) != nodeerr.ERR_GATEWAY_EGRESS_DENIED {
				t.Fatalf("CheckName = %v, want denial by %q", err, tt.rule)
			}
			if tt.rule == "unresolved" {
				want := map[string]string{"rule": "unresolved", "host": tt.host, "mode": "enforce"}
				if ne := nodeerr.As(err); ne.Address != tt.host || !maps.Equal(d.Metadata(), want) {
					t.Fatalf("unresolved: error %+v, metadata %v", ne, d.Metadata())
				}
			}
		})
	}
}

func TestCheckSocketPath(t *testing.T) {
	base := mustPolicy(t, egress.Options{SocketPaths: []string{"/run/app/app.sock"}})
	locked, err := base.ForRole(egress.Role{Name: "ci", AllowListOnly: true})
	if err != nil {
		t.Fatal(err)
	}
	withOwn, err := base.ForRole(egress.Role{Name: "dev", SocketPaths: []string{"/tmp/dev.sock"}})
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name string
		p    *egress.Policy
		path string
		rule string // "" = allowed
	}{
		{name: "listed", p: base, path: "/run/app/app.sock"},
		{name: "docker socket", p: base, path: "/var/run/docker.sock", rule: "default-deny:unix-socket"},
		{name: "dot-dot", p: base, path: "/run/app/../../var/run/docker.sock", rule: "invalid-socket-path"},
		{name: "relative", p: base, path: "app.sock", rule: "invalid-socket-path"},
		{name: "trailing slash", p: base, path: "/run/app/app.sock/", rule: "invalid-socket-path"},
		{name: "allow-list-only role drops base paths", p: locked, path: "/run/app/app.sock", rule: "not-in-allow-list:role ci"},
		{name: "role path", p: withOwn, path: "/tmp/dev.sock"},
		{name: "role inherits base paths", p: withOwn, path: "/run/app/app.sock"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := tt.p.CheckSocketPath(context.Background(), tt.path)
			if tt.rule == "" {
				if err != nil {
					t.Fatalf("CheckSocketPath = %v", err)
				}
				return
			}
			d, ok := egress.DecisionOf(err)
			ne := nodeerr.As(err)
			if !ok || d.Rule != tt.rule || ne == nil || ne.Code != nodeerr.ERR_GATEWAY_EGRESS_DENIED || ne.Address != tt.path {
				t.Fatalf("CheckSocketPath = %v, want denial by %q", err, tt.rule)
			}
			if got := d.Metadata()["socket_path"]; got != tt.path {
				t.Fatalf("metadata %v", d.Metadata())
			}
		})
	}
}

// Every default range is denied by default, under its own name when it
// is the most specific range holding the address.
func TestDefaultDenyRanges(t *testing.T) {
	p := mustPolicy(t, egress.Options{})
	for _, r := range egress.DefaultDenyRanges() {
		t.Run(r.String(), func(t *testing.T) {
			for _, a := range []netip.Addr{r.Prefix.Addr(), lastAddr(r.Prefix)} {
				d := p.Decide(a.String(), netip.AddrPortFrom(a, 443))
				if d.Allowed || !strings.HasPrefix(d.Rule, "default-deny:") {
					t.Fatalf("%s: %+v, want a default denial", a, d)
				}
			}
		})
	}
}

func lastAddr(p netip.Prefix) netip.Addr {
	b := p.Addr().AsSlice()
	for i := p.Bits(); i < len(b)*8; i++ {
		b[i/8] |= 0x80 >> (i % 8)
	}
	a, _ := netip.AddrFromSlice(b)
	return a
}

func TestPolicyString(t *testing.T) {
	p := mustPolicy(t, egress.Options{Allow: []string{"10.0.0.0/8", "[2001:db8::/32]:443"}, Deny: []string{"*.internal.example:443"},
		SelfAddrs: []netip.AddrPort{netip.MustParseAddrPort("127.0.0.1:50051")}})
	const want = "egress policy mode=enforce deny:*.internal.example:443 allow:10.0.0.0/8 allow:[2001:db8::/32]:443 self:127.0.0.1:50051"
	if got := p.String(); got != want {
		t.Fatalf("String = %q, want %q", got, want)
	}
}

// TestReportOnlyStillRefusesSelf: report-only lets every other denial
// through, but never a dial to the gateway's own listener (it would loop
// back into the gateway); that one is logged as denied, not "would be".
func TestReportOnlyStillRefusesSelf(t *testing.T) {
	var logs logRecords
	self := netip.MustParseAddrPort("127.0.0.1:50051")
	p := mustPolicy(t, egress.Options{
		Mode:      egress.ReportOnly,
		SelfAddrs: []netip.AddrPort{self},
		Logger:    slog.New(slog.NewJSONHandler(&logs, &slog.HandlerOptions{Level: slog.LevelDebug})),
	})
	err := p.Check(context.Background(), "127.0.0.1", self)
	var de *egress.DeniedError
	if !errors.As(err, &de) || de.Decision.Rule != "self:127.0.0.1:50051" {
		t.Fatalf("Check(own listener) = %v; want a denial by self:127.0.0.1:50051", err)
	}
	// Its neighbour on another port is only reported (loopback is default-denied).
	if err := p.Check(context.Background(), "127.0.0.1", netip.MustParseAddrPort("127.0.0.1:50052")); err != nil {
		t.Fatalf("Check(neighbour) in report-only = %v", err)
	}
	got := logs.records(t)
	if len(got) != 2 || got[0]["msg"] != "egress denied" || got[1]["msg"] != "egress would be denied (report-only)" {
		t.Fatalf("logged %v", got)
	}
}
