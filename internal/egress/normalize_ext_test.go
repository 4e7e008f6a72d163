package egress_test

import (
	"context"
	"errors"
	"net"
	"net/netip"
	"slices"
	"testing"

	"github.com/httpgateway/httpgateway/internal/agentpool"
	"github.com/httpgateway/httpgateway/internal/egress"
)

var _ agentpool.Resolver = (*egress.Resolver)(nil)

func TestNormalizeHost(t *testing.T) {
	tests := []struct {
		name    string
		in      string
		want    string // name, or the address for IPs
		isIP    bool
		wantErr bool
	}{
		{name: "dotted quad", in: "127.0.0.1", want: "127.0.0.1", isIP: true},
		{name: "two parts", in: "127.1", want: "127.0.0.1", isIP: true},
		{name: "three parts", in: "127.0.1", want: "127.0.0.1", isIP: true},
		{name: "three parts, 16-bit tail", in: "10.1.65535", want: "10.1.255.255", isIP: true},
		{name: "two parts, 24-bit tail", in: "1.16777215", want: "1.255.255.255", isIP: true},
		{name: "decimal", in: "2130706433", want: "127.0.0.1", isIP: true},
		{name: "hex", in: "0x7f000001", want: "127.0.0.1", isIP: true},
		{name: "hex upper", in: "0X7F000001", want: "127.0.0.1", isIP: true},
		{name: "octal part", in: "0177.0.0.1", want: "127.0.0.1", isIP: true},
		{name: "octal whole", in: "017700000001", want: "127.0.0.1", isIP: true},
		{name: "mixed bases", in: "0x7f.0.00.0x1", want: "127.0.0.1", isIP: true},
		{name: "hex two parts", in: "0x7f.1", want: "127.0.0.1", isIP: true},
		{name: "zero", in: "0", want: "0.0.0.0", isIP: true},
		{name: "bare 0x", in: "0x", want: "0.0.0.0", isIP: true},
		{name: "max", in: "4294967295", want: "255.255.255.255", isIP: true},
		{name: "trailing dot", in: "127.0.0.1.", want: "127.0.0.1", isIP: true},
		{name: "leading zeros decimal-looking", in: "010.0.0.1", want: "8.0.0.1", isIP: true},
		{name: "full-width digits", in: "１２７.０.０.１", want: "127.0.0.1", isIP: true},
		{name: "ideographic full stops", in: "127。0。0。1", want: "127.0.0.1", isIP: true},
		{name: "IPv6", in: "::1", want: "::1", isIP: true},
		{name: "bracketed IPv6", in: "[::1]", want: "::1", isIP: true},
		{name: "bracketed mapped", in: "[::ffff:127.0.0.1]", want: "::ffff:127.0.0.1", isIP: true},
		{name: "mapped hex", in: "::ffff:a9fe:a9fe", want: "::ffff:169.254.169.254", isIP: true},
		{name: "IPv6 zone", in: "fe80::1%eth0", want: "fe80::1%eth0", isIP: true},
		{name: "name", in: "example.com", want: "example.com"},
		{name: "case and trailing dot", in: "WWW.Example.COM.", want: "www.example.com"},
		{name: "IDN", in: "bücher.example", want: "xn--bcher-kva.example"},
		{name: "IDN upper case", in: "BÜCHER.example", want: "xn--bcher-kva.example"},
		{name: "full-width name", in: "ＥＸＡＭＰＬＥ。com", want: "example.com"},
		{name: "punycode kept", in: "xn--bcher-kva.example", want: "xn--bcher-kva.example"},
		{name: "underscore kept", in: "_svc.Example.com", want: "_svc.example.com"},
		{name: "digits inside a name", in: "1e100.net", want: "1e100.net"},
		{name: "hex-looking label, not last", in: "0x7f.example", want: "0x7f.example"},
		{name: "not hex", in: "0x1g", want: "0x1g"},
		{name: "single label", in: "localhost", want: "localhost"},
		{name: "empty", in: "", wantErr: true},
		{name: "only dots", in: "..", wantErr: true},
		{name: "past 32 bits", in: "4294967296", wantErr: true},
		{name: "long number", in: "99999999999999999999999999", wantErr: true},
		{name: "part past 255", in: "256.0.0.1", wantErr: true},
		{name: "last part past 8 bits", in: "1.2.3.256", wantErr: true},
		{name: "three parts, tail past 16 bits", in: "1.2.65536", wantErr: true},
		{name: "two parts, tail past 24 bits", in: "1.16777216", wantErr: true},
		{name: "five parts", in: "1.2.3.4.5", wantErr: true},
		{name: "bad octal", in: "08.0.0.1", wantErr: true},
		{name: "empty part", in: "127..1", wantErr: true},
		{name: "numeric TLD", in: "example.123", wantErr: true},
		{name: "bracketed IPv4", in: "[127.0.0.1]", wantErr: true},
		{name: "bad brackets", in: "[nope]", wantErr: true},
		{name: "bad IDN", in: "a\u0000ü.example", wantErr: true},
		{name: "NUL after a name", in: "evil.internal.example\x00", wantErr: true},
		{name: "space after an address", in: "127.0.0.1 x", wantErr: true},
		{name: "trailing space", in: "127.0.0.1 ", wantErr: true},
		{name: "percent", in: "%31%32%37.0.0.1", wantErr: true},
		{name: "port in host", in: "example.com:80", wantErr: true},
		{name: "userinfo in host", in: "user@example.com", wantErr: true},
		{name: "backslash", in: "example.com\\evil", wantErr: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			name, ip, isIP, err := egress.NormalizeHost(tt.in)
			if tt.wantErr {
				if err == nil {
					t.Fatalf("NormalizeHost(%q) = %q, %v, %t; want an error", tt.in, name, ip, isIP)
				}
				return
			}
			if err != nil || name != tt.want || isIP != tt.isIP {
				t.Fatalf("NormalizeHost(%q) = %q, %v, %t, %v; want %q, isIP %t", tt.in, name, ip, isIP, err, tt.want, tt.isIP)
			}
			if isIP && ip.String() != tt.want {
				t.Fatalf("ip = %v, want %s", ip, tt.want)
			}
			if !isIP && ip.IsValid() {
				t.Fatalf("a name came with an address %v", ip)
			}
		})
	}
}

func TestResolver(t *testing.T) {
	fake := newFakeResolver(map[string][][]string{
		"example.com":           {{publicV4}},
		"example.com.":          {{publicV6}},
		"xn--bcher-kva.example": {{"10.0.0.1"}},
	})
	r := egress.NewResolver(fake)
	tests := []struct {
		name     string
		host     string
		network  string
		want     []string
		notFound bool
		lookedUp string // the name the inner resolver saw, "" for none
	}{
		{name: "numeric host, no lookup", host: "127.1", network: "ip", want: []string{"127.0.0.1"}},
		{name: "decimal host, no lookup", host: "2130706433", network: "ip4", want: []string{"127.0.0.1"}},
		{name: "IPv4 form asked for IPv6", host: "127.1", network: "ip6", notFound: true},
		{name: "bracketed IPv6", host: "[::1]", network: "ip6", want: []string{"::1"}},
		{name: "name lower-cased", host: "Example.COM", network: "ip", want: []string{publicV4}, lookedUp: "example.com"},
		{name: "absolute name keeps its dot", host: "EXAMPLE.com.", network: "ip", want: []string{publicV6}, lookedUp: "example.com."},
		{name: "IDN looked up as punycode", host: "Bücher.example", network: "ip", want: []string{"10.0.0.1"}, lookedUp: "xn--bcher-kva.example"},
		{name: "invalid numeric host", host: "08.0.0.1", network: "ip", notFound: true},
		{name: "unknown name", host: "nowhere.example", network: "ip", notFound: true, lookedUp: "nowhere.example"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			before := len(fake.lookedUp())
			addrs, err := r.LookupNetIP(context.Background(), tt.network, tt.host)
			if tt.notFound {
				var dnsErr *net.DNSError
				if !errors.As(err, &dnsErr) || !dnsErr.IsNotFound {
					t.Fatalf("LookupNetIP = %v, %v; want a not-found DNSError", addrs, err)
				}
			} else {
				if err != nil {
					t.Fatal(err)
				}
				var got []string
				for _, a := range addrs {
					got = append(got, a.String())
				}
				if !slices.Equal(got, tt.want) {
					t.Fatalf("LookupNetIP = %v, want %v", got, tt.want)
				}
			}
			looked := fake.lookedUp()[before:]
			switch {
			case tt.lookedUp == "" && len(looked) != 0:
				t.Fatalf("inner resolver asked for %v", looked)
			case tt.lookedUp != "" && !slices.Equal(looked, []string{tt.lookedUp}):
				t.Fatalf("inner resolver asked for %v, want %q", looked, tt.lookedUp)
			}
		})
	}
}

// The zero Resolver falls back to net.DefaultResolver only for names;
// numeric hosts never reach it (no lookup, no network).
func TestZeroResolverNumeric(t *testing.T) {
	var r egress.Resolver
	addrs, err := r.LookupNetIP(context.Background(), "ip", "0x7f000001")
	if err != nil || len(addrs) != 1 || addrs[0] != netip.MustParseAddr("127.0.0.1") {
		t.Fatalf("LookupNetIP = %v, %v", addrs, err)
	}
}
