package config_test

import (
	"net/netip"
	"testing"

	"github.com/httpgateway/httpgateway/internal/config"
)

func TestParseEgressRule(t *testing.T) {
	valid := []struct {
		in   string
		want config.EgressRule
	}{
		{"10.0.0.0/8", config.EgressRule{Prefix: netip.MustParsePrefix("10.0.0.0/8")}},
		{"10.0.0.0/8:443", config.EgressRule{Prefix: netip.MustParsePrefix("10.0.0.0/8"), Port: 443}},
		{"192.0.2.7", config.EgressRule{Prefix: netip.MustParsePrefix("192.0.2.7/32")}},
		{"192.0.2.7:8080", config.EgressRule{Prefix: netip.MustParsePrefix("192.0.2.7/32"), Port: 8080}},
		{"2001:db8::/32", config.EgressRule{Prefix: netip.MustParsePrefix("2001:db8::/32")}},
		{"::1", config.EgressRule{Prefix: netip.MustParsePrefix("::1/128")}},
		{"[2001:db8::/32]:443", config.EgressRule{Prefix: netip.MustParsePrefix("2001:db8::/32"), Port: 443}},
		{"[::1]", config.EgressRule{Prefix: netip.MustParsePrefix("::1/128")}},
		{"Example.COM", config.EgressRule{Host: "example.com"}},
		{"localhost:3000", config.EgressRule{Host: "localhost", Port: 3000}},
		{"*.example.com:443", config.EgressRule{Host: "*.example.com", Port: 443}},
		{"xn--bcher-kva.example", config.EgressRule{Host: "xn--bcher-kva.example"}},
	}
	for _, tt := range valid {
		got, err := config.ParseEgressRule(tt.in)
		if err != nil || got != tt.want {
			t.Errorf("ParseEgressRule(%q) = %+v, %v; want %+v", tt.in, got, err, tt.want)
		}
	}
	invalid := []string{
		"", "10.0.0.0/33", "10.0.0.1/8", "300.1.1.1/8", "example.com:0", "example.com:65536", "example.com:",
		"example.com:http", "*", "*.", "ex*ample.com", "a.*.example.com", "-bad.example.com", "bad_.example.com",
		"exa mple.com", "10.0.0", "[::1", "[::1]x", "[::1]:", "[example.com]:80", "fe80::1%eth0", "example..com",
		"https://example.com",
	}
	for _, in := range invalid {
		if got, err := config.ParseEgressRule(in); err == nil {
			t.Errorf("ParseEgressRule(%q) = %+v, want an error", in, got)
		}
	}
}
