package server_test

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"

	gatewayv1 "github.com/httpgateway/httpgateway/gen/httpgateway/v1"
	"github.com/httpgateway/httpgateway/internal/auth"
	"github.com/httpgateway/httpgateway/internal/config"
	"github.com/httpgateway/httpgateway/internal/server"
	"github.com/httpgateway/httpgateway/internal/testutil"
)

// seenIdentity is an interceptor placed after authentication that records
// the identity each call carried.
type seenIdentity struct {
	mu  sync.Mutex
	ids []auth.Identity
}

func (s *seenIdentity) unary(ctx context.Context, req any, _ *grpc.UnaryServerInfo, h grpc.UnaryHandler) (any, error) {
	id, _ := auth.FromContext(ctx)
	s.mu.Lock()
	s.ids = append(s.ids, id)
	s.mu.Unlock()
	return h(ctx, req)
}

func (s *seenIdentity) last() auth.Identity {
	s.mu.Lock()
	defer s.mu.Unlock()
	if len(s.ids) == 0 {
		return auth.Identity{}
	}
	return s.ids[len(s.ids)-1]
}

func withToken(ctx context.Context, tok string) context.Context {
	return metadata.AppendToOutgoingContext(ctx, "authorization", "Bearer "+tok)
}

const (
	tokenA = "token-a-0123456789abcdef"
	tokenB = "token-b-0123456789abcdef"
)

func TestTokenAuth(t *testing.T) {
	dir := t.TempDir()
	file := filepath.Join(dir, "tokens")
	if err := os.WriteFile(file, []byte("# callers\n"+tokenA+" alice ops\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	seen := &seenIdentity{}
	ts := startServer(t, serverSetup{
		register: registerUnimplemented,
		config: func(c *config.Config) {
			c.AuthTokensFile = file
			c.AuthTokens = []string{tokenB + " bob"}
		},
		opts: []server.Option{server.WithUnaryInterceptors(seen.unary)},
	})
	cc := dial(t, ts.addr)
	ctx := testContext(t)
	agents := gatewayv1.NewAgentServiceClient(cc)

	for _, tc := range []struct {
		name string
		ctx  context.Context
		want codes.Code
		id   auth.Identity
	}{
		{"no credentials", ctx, codes.Unauthenticated, auth.Identity{}},
		{"unknown token", withToken(ctx, "nope-0123456789abcdef"), codes.Unauthenticated, auth.Identity{}},
		{"not bearer", metadata.AppendToOutgoingContext(ctx, "authorization", "Basic "+tokenA), codes.Unauthenticated, auth.Identity{}},
		{"file token", withToken(ctx, tokenA), codes.Unimplemented, auth.Identity{Name: "alice", Role: "ops", Method: auth.MethodToken}},
		{"inline token", withToken(ctx, tokenB), codes.Unimplemented, auth.Identity{Name: "bob", Method: auth.MethodToken}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := agents.ListAgents(tc.ctx, &gatewayv1.ListAgentsRequest{})
			if code := status.Code(err); code != tc.want {
				t.Fatalf("ListAgents: %v; want %v", err, tc.want)
			}
			if tc.want != codes.Unauthenticated && seen.last() != tc.id {
				t.Errorf("identity %+v; want %+v", seen.last(), tc.id)
			}
		})
	}

	// Health stays open without credentials.
	if _, err := healthpb.NewHealthClient(cc).Check(ctx, &healthpb.HealthCheckRequest{}); err != nil {
		t.Errorf("health without credentials: %v", err)
	}
	if strings.Contains(ts.logs.String(), tokenA) || strings.Contains(ts.logs.String(), tokenB) {
		t.Error("a token reached the log")
	}
}

// TestAnonymousWhenNoAuth: with nothing configured every call is
// anonymous (no setup needed); allow-anonymous keeps that with tokens.
func TestAnonymousWhenNoAuth(t *testing.T) {
	for _, tc := range []struct {
		name   string
		config func(*config.Config)
		want   codes.Code
	}{
		{"no auth configured", nil, codes.Unimplemented},
		{"tokens without allow-anonymous", func(c *config.Config) { c.AuthTokens = []string{tokenA} }, codes.Unauthenticated},
		{"tokens with allow-anonymous", func(c *config.Config) { c.AuthTokens = []string{tokenA}; c.AllowAnonymous = true }, codes.Unimplemented},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ts := startServer(t, serverSetup{register: registerUnimplemented, config: tc.config})
			_, err := gatewayv1.NewAgentServiceClient(dial(t, ts.addr)).ListAgents(testContext(t), &gatewayv1.ListAgentsRequest{})
			if code := status.Code(err); code != tc.want {
				t.Errorf("ListAgents: %v; want %v", err, tc.want)
			}
		})
	}
}

func dialTLS(t *testing.T, addr string, roots *x509.CertPool, client *tls.Certificate) *grpc.ClientConn {
	t.Helper()
	cfg := &tls.Config{RootCAs: roots, MinVersion: tls.VersionTLS12}
	if client != nil {
		cfg.Certificates = []tls.Certificate{*client}
	}
	cc, err := grpc.NewClient(addr, grpc.WithTransportCredentials(credentials.NewTLS(cfg)))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cc.Close() })
	return cc
}

func TestMTLSAuthAndReload(t *testing.T) {
	p := testutil.NewPKI(t)
	certFile, keyFile := p.WritePair(t, "server", p.Leaf(t, "server-1", "", true))
	seen := &seenIdentity{}
	ts := startServer(t, serverSetup{
		register: registerUnimplemented,
		config: func(c *config.Config) {
			c.TLSCertFile, c.TLSKeyFile, c.TLSClientCAFile = certFile, keyFile, p.CAFile
			c.AuthRoles = []string{"spiffe://test/caller=batch"}
		},
		opts: []server.Option{server.WithUnaryInterceptors(seen.unary), server.WithTLSCheckInterval(-1)},
	})
	ctx := testContext(t)
	call := func(cc *grpc.ClientConn) error {
		_, err := gatewayv1.NewAgentServiceClient(cc).ListAgents(ctx, &gatewayv1.ListAgentsRequest{})
		return err
	}

	// By CN, then by URI SAN (which wins over the CN) with its role.
	cn := p.Leaf(t, "carol", "", false)
	if err := call(dialTLS(t, ts.addr, p.Pool(), &cn)); status.Code(err) != codes.Unimplemented {
		t.Fatalf("with a client certificate: %v", err)
	}
	if got := seen.last(); got != (auth.Identity{Name: "carol", Method: auth.MethodMTLS}) {
		t.Errorf("identity %+v; want carol by mTLS", got)
	}
	uri := p.Leaf(t, "ignored", "spiffe://test/caller", false)
	if err := call(dialTLS(t, ts.addr, p.Pool(), &uri)); status.Code(err) != codes.Unimplemented {
		t.Fatalf("with a URI SAN certificate: %v", err)
	}
	if got := seen.last(); got != (auth.Identity{Name: "spiffe://test/caller", Role: "batch", Method: auth.MethodMTLS}) {
		t.Errorf("identity %+v; want the URI SAN with role batch", got)
	}

	// No client certificate: the handshake is refused.
	if err := call(dialTLS(t, ts.addr, p.Pool(), nil)); status.Code(err) != codes.Unavailable {
		t.Errorf("without a client certificate: %v; want UNAVAILABLE (handshake refused)", err)
	}

	// The server certificate is re-read when its files change: a new
	// connection sees the new one.
	p.WritePair(t, "server", p.Leaf(t, "server-2", "", true))
	var got string
	conn, err := tls.Dial("tcp", ts.addr, &tls.Config{RootCAs: p.Pool(), Certificates: []tls.Certificate{cn}, NextProtos: []string{"h2"}})
	if err != nil {
		t.Fatal(err)
	}
	got = conn.ConnectionState().PeerCertificates[0].Subject.CommonName
	conn.Close()
	if got != "server-2" {
		t.Errorf("server certificate after the files changed: %s; want server-2", got)
	}
}
