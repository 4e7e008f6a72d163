package auth_test

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"path/filepath"
	"testing"

	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/peer"

	"github.com/httpgateway/httpgateway/internal/auth"
)

// certCtx is a call context whose connection presented a verified client
// certificate for cn.
func certCtx(cn string) context.Context {
	cert := &x509.Certificate{Subject: pkix.Name{CommonName: cn}}
	return peer.NewContext(context.Background(), &peer.Peer{AuthInfo: credentials.TLSInfo{
		State: tls.ConnectionState{VerifiedChains: [][]*x509.Certificate{{cert}}}}})
}

// TestCertIdentityRole: a certificate identity's role is its Roles entry,
// else the role its name has in the tokens (one identity, one role however
// it authenticates), else the default role; a tokens reload moves it.
func TestCertIdentityRole(t *testing.T) {
	file := filepath.Join(t.TempDir(), "tokens")
	write(t, file, tokA+" alice ops\n")
	tokens, err := auth.NewTokens(auth.TokensOptions{File: file, CheckInterval: -1})
	if err != nil {
		t.Fatal(err)
	}
	a := auth.New(auth.Options{Tokens: tokens, Roles: map[string]string{"bob": "ci"}})
	for _, tc := range []struct{ cn, role string }{
		{"alice", "ops"}, // from the tokens
		{"bob", "ci"},    // from Roles
		{"carol", ""},    // neither: the default role
	} {
		id, err := a.Authenticate(certCtx(tc.cn))
		if err != nil || id.Name != tc.cn || id.Role != tc.role || id.Method != auth.MethodMTLS {
			t.Errorf("%s: %+v, %v; want role %q by mTLS", tc.cn, id, err, tc.role)
		}
	}
	write(t, file, tokA+" alice batch\n")
	if id, err := a.Authenticate(certCtx("alice")); err != nil || id.Role != "batch" {
		t.Errorf("alice after the tokens moved her to batch: %+v, %v", id, err)
	}
}
