package auth

import (
	"context"
	"crypto/x509"
	"strings"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/peer"
	"google.golang.org/grpc/status"
)

// Options configure an Authenticator.
type Options struct {
	// Tokens are the accepted bearer tokens; nil accepts none.
	Tokens *Tokens
	// Roles maps a client-certificate identity to its role; an identity
	// not listed takes the role the tokens give the same name, else the
	// default role "". (Token identities carry their role in the tokens
	// file.)
	Roles map[string]string
	// AllowAnonymous lets calls without credentials in, as the anonymous
	// identity.
	AllowAnonymous bool
	// Open reports the methods served without credentials. Default:
	// grpc.health.v1 and server reflection.
	Open func(fullMethod string) bool
}

// DefaultOpen is the default Options.Open: health checks (probes carry no
// credentials) and server reflection (it lists the API, nothing more).
func DefaultOpen(fullMethod string) bool {
	return strings.HasPrefix(fullMethod, "/grpc.health.v1.Health/") ||
		strings.HasPrefix(fullMethod, "/grpc.reflection.")
}

// Authenticator identifies callers; see the package documentation for the
// order of the checks.
type Authenticator struct{ o Options }

// New returns an Authenticator.
func New(o Options) *Authenticator {
	if o.Open == nil {
		o.Open = DefaultOpen
	}
	return &Authenticator{o: o}
}

// errUnauthenticated is the one answer to every refused call: it does not
// say whether a token was unknown, malformed or missing.
var errUnauthenticated = status.Error(codes.Unauthenticated, "authentication required: a valid bearer token or client certificate")

// Authenticate returns the identity of the call in ctx, or an
// UNAUTHENTICATED status.
func (a *Authenticator) Authenticate(ctx context.Context) (Identity, error) {
	if tok, present, err := bearer(ctx); present {
		if err != nil || a.o.Tokens == nil {
			return Identity{}, errUnauthenticated
		}
		id, ok := a.o.Tokens.Lookup(tok)
		if !ok {
			return Identity{}, errUnauthenticated
		}
		return id, nil
	}
	if name, ok := certIdentity(ctx); ok {
		return Identity{Name: name, Role: a.certRole(name), Method: MethodMTLS}, nil
	}
	if a.o.AllowAnonymous {
		return Anonymous, nil
	}
	return Identity{}, errUnauthenticated
}

// certRole is the role of a client-certificate identity: its Roles entry,
// else the role tokens give the same name, else the default role. One
// identity has one role (see NewTokens), however it authenticates.
func (a *Authenticator) certRole(name string) string {
	if r, ok := a.o.Roles[name]; ok {
		return r
	}
	if a.o.Tokens != nil {
		if r, ok := a.o.Tokens.RoleOf(name); ok {
			return r
		}
	}
	return ""
}

// bearer returns the token of the call's authorization metadata. present
// is true when there is an authorization header at all; err when it is not
// exactly one "Bearer <token>".
func bearer(ctx context.Context) (tok string, present bool, err error) {
	// ValueFromIncomingContext copies only this key's values, where
	// FromIncomingContext would copy the whole metadata on every call.
	vals := metadata.ValueFromIncomingContext(ctx, "authorization")
	if len(vals) == 0 {
		return "", false, nil
	}
	if len(vals) > 1 {
		return "", true, errUnauthenticated
	}
	scheme, tok, ok := strings.Cut(strings.TrimSpace(vals[0]), " ")
	tok = strings.TrimSpace(tok)
	if !ok || !strings.EqualFold(scheme, "bearer") || tok == "" {
		return "", true, errUnauthenticated
	}
	return tok, true, nil
}

// certIdentity returns the identity in the verified client certificate of
// the call's connection: its first URI SAN, else its subject CN. Only a
// chain the TLS stack verified counts (VerifiedChains), never merely a
// presented certificate.
func certIdentity(ctx context.Context) (string, bool) {
	p, ok := peer.FromContext(ctx)
	if !ok {
		return "", false
	}
	ti, ok := p.AuthInfo.(credentials.TLSInfo)
	if !ok || len(ti.State.VerifiedChains) == 0 || len(ti.State.VerifiedChains[0]) == 0 {
		return "", false
	}
	return CertName(ti.State.VerifiedChains[0][0])
}

// CertName is the identity a client certificate stands for: its first URI
// SAN, else its subject common name.
func CertName(c *x509.Certificate) (string, bool) {
	if len(c.URIs) > 0 {
		return c.URIs[0].String(), true
	}
	if c.Subject.CommonName != "" {
		return c.Subject.CommonName, true
	}
	return "", false
}

// authorize authenticates the call; open methods pass without
// credentials (as the anonymous identity when they carry none valid).
func (a *Authenticator) authorize(ctx context.Context, method string) (context.Context, error) {
	id, err := a.Authenticate(ctx)
	if err != nil {
		if !a.o.Open(method) {
			return nil, err
		}
		id = Anonymous
	}
	return NewContext(ctx, id), nil
}

// UnaryServerInterceptor authenticates unary calls.
func (a *Authenticator) UnaryServerInterceptor() grpc.UnaryServerInterceptor {
	return func(ctx context.Context, req any, info *grpc.UnaryServerInfo, h grpc.UnaryHandler) (any, error) {
		ctx, err := a.authorize(ctx, info.FullMethod)
		if err != nil {
			return nil, err
		}
		return h(ctx, req)
	}
}

// StreamServerInterceptor authenticates streaming calls.
func (a *Authenticator) StreamServerInterceptor() grpc.StreamServerInterceptor {
	return func(srv any, ss grpc.ServerStream, info *grpc.StreamServerInfo, h grpc.StreamHandler) error {
		ctx, err := a.authorize(ss.Context(), info.FullMethod)
		if err != nil {
			return err
		}
		return h(srv, &identityStream{ServerStream: ss, ctx: ctx})
	}
}

// identityStream is a ServerStream whose Context carries the identity.
type identityStream struct {
	grpc.ServerStream
	ctx context.Context
}

func (s *identityStream) Context() context.Context { return s.ctx }
