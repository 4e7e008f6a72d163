package auth

import "context"

// Method says how an identity was established.
type Method string

// The ways a caller is identified.
const (
	MethodAnonymous Method = "anonymous"
	MethodToken     Method = "token"
	MethodMTLS      Method = "mtls"
)

// Identity is an authenticated caller. Name is what owns requests and
// agents and what limits are counted against; the anonymous identity's Name
// is "" (everything anonymous callers create is shared among them, as when
// no authentication is configured). Role selects the caller's policy; ""
// is the default role.
type Identity struct {
	Name   string
	Role   string
	Method Method
}

// Anonymous is the identity of a caller without credentials.
var Anonymous = Identity{Method: MethodAnonymous}

type ctxKey struct{}

// NewContext returns ctx carrying id.
func NewContext(ctx context.Context, id Identity) context.Context {
	return context.WithValue(ctx, ctxKey{}, id)
}

// FromContext returns the identity the interceptors put in ctx. A context
// without one (a service called in-process, without the interceptors) is
// the anonymous identity, ok false.
func FromContext(ctx context.Context) (id Identity, ok bool) {
	id, ok = ctx.Value(ctxKey{}).(Identity)
	if !ok {
		return Anonymous, false
	}
	return id, true
}
