package egress

import (
	"net/netip"
	"slices"
	"testing"
)

func TestViews(t *testing.T) {
	tests := []struct {
		name string
		addr string
		want []string // embedded IPv4 addresses with their embedding
	}{
		{name: "IPv4", addr: "10.0.0.1"},
		{name: "plain IPv6", addr: "2001:4860:4860::8888"},
		{name: "NAT64 well-known", addr: "64:ff9b::a00:1", want: []string{"10.0.0.1 nat64 64:ff9b::/96"}},
		{name: "NAT64 local /48", addr: "64:ff9b:1:a9fe:a9:fe00::", want: []string{"169.254.169.254 nat64 64:ff9b:1::/48"}},
		{name: "6to4", addr: "2002:a9fe:a9fe::1", want: []string{"169.254.169.254 6to4 2002::/16"}},
		{name: "Teredo (RFC 4380 example)", addr: "2001:0:4136:e378:8000:63bf:3fff:fdd2",
			want: []string{"65.54.227.120 teredo-server 2001::/32", "192.0.2.45 teredo-client 2001::/32"}},
		{name: "IPv4-translated", addr: "::ffff:0:7f00:1", want: []string{"127.0.0.1 ipv4-translated ::ffff:0:0:0/96"}},
		{name: "IPv4-compatible", addr: "::7f00:1", want: []string{"127.0.0.1 ipv4-compatible ::/96"}},
		{name: "unspecified has none", addr: "::"},
		{name: "loopback has none", addr: "::1"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			a := netip.MustParseAddr(tt.addr)
			vs := views(a)
			if vs[0].addr != a || vs[0].via != "" {
				t.Fatalf("first view %+v, want the address itself", vs[0])
			}
			var got []string
			for _, v := range vs[1:] {
				got = append(got, v.addr.String()+" "+v.via)
			}
			if !slices.Equal(got, tt.want) {
				t.Fatalf("views(%s) = %q, want %q", a, got, tt.want)
			}
		})
	}
}

func TestCanonical(t *testing.T) {
	for in, want := range map[string]string{
		"::ffff:127.0.0.1": "127.0.0.1",
		"fe80::1%eth0":     "fe80::1",
		"10.0.0.1":         "10.0.0.1",
		"64:ff9b::a00:1":   "64:ff9b::a00:1",
	} {
		if got := canonical(netip.MustParseAddr(in)); got.String() != want {
			t.Errorf("canonical(%s) = %s, want %s", in, got, want)
		}
	}
}
