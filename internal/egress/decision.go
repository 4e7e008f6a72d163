package egress

import (
	"errors"
	"net/netip"
	"strconv"
	"strings"

	"github.com/httpgateway/httpgateway/internal/nodeerr"
)

// Decision is the outcome of the policy for one destination.
type Decision struct {
	// Allowed is the policy's verdict. In report-only mode a false verdict
	// is logged but the dial goes ahead.
	Allowed bool
	// Rule names what decided, for logs, spans and the ErrorInfo of a
	// denial:
	//
	//	deny:*.internal.example:443              an explicit deny rule
	//	self:127.0.0.1:50051                     one of the gateway's listeners
	//	allow:10.0.0.0/8                         an explicit allow rule
	//	default-deny:loopback 127.0.0.0/8        a default-denied range
	//	default-deny:link-local 169.254.0.0/16 via nat64 64:ff9b::/96
	//	                                         ... reached through an embedding
	//	not-in-allow-list:role ci                a role that is limited to its allow list
	//	invalid-host                             a host name that does not normalise
	//	default-allow                            nothing matched: the public internet
	//
	// A role's own rules carry its name: "role:ci:allow:api.example.com:443".
	Rule string
	// Reason says in words why, e.g. "169.254.169.254 is link-local
	// (embedded in 64:ff9b::a9fe:a9fe)".
	Reason string
	// Host is the requested host, normalised (see NormalizeHost), or as
	// given when it does not normalise.
	Host string
	// Addr is the destination checked, canonical (IPv4-mapped addresses
	// unmapped, zone dropped). Zero for a unix socket and for a name
	// CheckName could not resolve.
	Addr netip.AddrPort
	// SocketPath is the unix socket checked, if that is what was checked.
	SocketPath string
	// Role is the name of the role whose policy decided, "" for the base
	// policy.
	Role string
	// Mode is the mode the decision was taken in.
	Mode Mode
}

// selfRulePrefix starts the rule of a denial of the gateway's own listener.
const selfRulePrefix = "self:"

// Enforced reports whether the decision stops the dial: a denial in enforce
// mode, or a denial of one of the gateway's own listeners in any mode. A
// report-only policy still refuses those: a request to the gateway itself
// would loop back into it, which is never a rollout question.
func (d Decision) Enforced() bool {
	return !d.Allowed && (d.Mode != ReportOnly || strings.HasPrefix(d.Rule, selfRulePrefix))
}

// Metadata returns the decision as string pairs, meant for the metadata of
// the google.rpc.ErrorInfo of a denial and for span attributes. Keys:
// "rule", "host", "address" and "port" (when an address was checked),
// "socket_path" (for a unix socket), "mode", and "role" when a role decided.
func (d Decision) Metadata() map[string]string {
	m := map[string]string{"rule": d.Rule, "host": d.Host, "mode": d.Mode.String()}
	switch {
	case d.SocketPath != "":
		m["socket_path"] = d.SocketPath
	case d.Addr.IsValid():
		m["address"] = d.Addr.Addr().String()
		m["port"] = strconv.Itoa(int(d.Addr.Port()))
	}
	if d.Role != "" {
		m["role"] = d.Role
	}
	return m
}

// dest is how messages name the destination: "host (ip:port)" or the
// socket path.
func (d Decision) dest() string {
	switch {
	case d.SocketPath != "":
		return "unix socket " + d.SocketPath
	case !d.Addr.IsValid():
		return d.Host
	}
	return d.Host + " (" + d.Addr.String() + ")"
}

// DeniedError is the cause inside the *nodeerr.Error that Check returns for
// a denial: errors.As(err, new(*egress.DeniedError)) finds it, and with it
// the rule, for the ErrorInfo and the span.
type DeniedError struct {
	Decision Decision
}

func (e *DeniedError) Error() string {
	return "egress denied by rule " + e.Decision.Rule + ": " + e.Decision.dest()
}

// deniedError wraps d as the error the agent pool reports: code
// ERR_GATEWAY_EGRESS_DENIED, the peer as Address and Port.
func deniedError(d Decision) error {
	de := &DeniedError{Decision: d}
	e := &nodeerr.Error{Code: nodeerr.ERR_GATEWAY_EGRESS_DENIED, Message: de.Error(), Err: de}
	switch {
	case d.SocketPath != "":
		e.Address = d.SocketPath
	case !d.Addr.IsValid():
		e.Address = d.Host
	default:
		e.Address, e.Port = d.Addr.Addr().String(), int(d.Addr.Port())
	}
	return e
}

// DecisionOf returns the decision behind an egress denial anywhere in
// err's chain.
func DecisionOf(err error) (Decision, bool) {
	var de *DeniedError
	if errors.As(err, &de) {
		return de.Decision, true
	}
	return Decision{}, false
}
