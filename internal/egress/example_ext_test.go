package egress_test

import (
	"context"
	"fmt"
	"log/slog"
	"net"
	"net/netip"

	"github.com/httpgateway/httpgateway/internal/agentpool"
	"github.com/httpgateway/httpgateway/internal/egress"
	"github.com/httpgateway/httpgateway/internal/nodeerr"
)

// How cmd/gateway wires the policy into every agent's dial machinery.
func Example_agentDeps() {
	policy, err := egress.New(egress.Options{
		Allow:     []string{"10.1.0.0/16:443"},                             // cfg.EgressAllow
		Deny:      []string{"*.internal.example"},                          // cfg.EgressDeny
		SelfAddrs: []netip.AddrPort{netip.MustParseAddrPort("[::]:50051")}, // the bound listeners
		Logger:    slog.Default(),
	})
	if err != nil {
		panic(err)
	}
	deps := agentpool.Deps{
		Resolver:        egress.NewResolver(net.DefaultResolver),
		Check:           policy.Check,
		CheckSocketPath: policy.CheckSocketPath,
	}
	_ = deps // agentpool.New(name, opts, deps)
}

func ExamplePolicy_Check() {
	policy, _ := egress.New(egress.Options{})
	err := policy.Check(context.Background(), "evil.example.com", netip.MustParseAddrPort("[64:ff9b::a9fe:a9fe]:80"))
	fmt.Println(nodeerr.Code(err))
	if d, ok := egress.DecisionOf(err); ok {
		fmt.Println(d.Rule)
		fmt.Println(d.Metadata()["address"])
	}
	// Output:
	// ERR_GATEWAY_EGRESS_DENIED
	// default-deny:link-local 169.254.0.0/16 via nat64 64:ff9b::/96
	// 64:ff9b::a9fe:a9fe
}

func ExamplePolicy_ForRole() {
	base, _ := egress.New(egress.Options{})
	ci, _ := base.ForRole(egress.Role{Name: "ci", Allow: []string{"*.github.com:443"}, AllowListOnly: true})
	for _, port := range []uint16{443, 22} {
		d := ci.Decide("api.github.com", netip.AddrPortFrom(netip.MustParseAddr("140.82.112.6"), port))
		fmt.Println(port, d.Allowed, d.Rule)
	}
	// Output:
	// 443 true role:ci:allow:*.github.com:443
	// 22 false not-in-allow-list:role ci
}

func ExampleNormalizeHost() {
	for _, h := range []string{"0x7f000001", "0177.0.0.1", "BÜCHER.example."} {
		name, _, isIP, _ := egress.NormalizeHost(h)
		fmt.Println(name, isIP)
	}
	// Output:
	// 127.0.0.1 true
	// 127.0.0.1 true
	// xn--bcher-kva.example false
}
