// Package egress is the gateway's SSRF defence: the egress policy the agent
// pool applies at dial time to every resolved address, on every hop (first
// request, redirect, proxy, CONNECT, upgrade), so that DNS rebinding cannot
// slip past it.
//
// It owns:
//   - Policy: compiled allow/deny rules (the --egress-allow / --egress-deny
//     syntax of config.ParseEgressRule, plus pinned "HOST@CIDR" rules), the
//     default-deny ranges (loopback, link-local and cloud metadata, private,
//     CGNAT, multicast, reserved, documentation, ...; DefaultDenyRanges),
//     the gateway's own listeners, per-role layers (ForRole) and the
//     enforce / report-only modes (report-only still refuses the gateway's
//     own listeners: Decision.Enforced). Its Check and CheckSocketPath methods are
//     agentpool.Deps.Check and Deps.CheckSocketPath, and CheckName (over a
//     resolver) is Deps.CheckName, for the origin behind a proxy; see
//     Policy for the precedence of rules.
//   - Address normalisation: IPv4-mapped IPv6 is unmapped, and IPv4
//     addresses embedded in NAT64, 6to4, Teredo, SIIT and IPv4-compatible
//     IPv6 addresses are checked as well (embedded.go).
//   - Host normalisation (NormalizeHost): case, trailing dots, IDN to
//     punycode, and the numeric forms inet_aton accepts ("127.1",
//     "2130706433", "0x7f000001", "0177.0.0.1"), which Resolver resolves to
//     the address a libc client would reach, so that the policy sees it.
//   - Decision and DeniedError: what decided (the rule's name), delivered as
//     an *nodeerr.Error with code ERR_GATEWAY_EGRESS_DENIED that unwraps to
//     a *DeniedError, for the rpc layer's ErrorInfo and the span.
//
// It depends only on internal/config (the rule syntax) and internal/nodeerr.
// It must never import internal/rpc, internal/httpengine, internal/agentpool
// (its hooks are plain functions and interfaces), gRPC or protobuf packages.
package egress
