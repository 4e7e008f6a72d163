package server_test

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"math/big"
	"net"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

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

// pki is a CA made in the test, with helpers to issue and write
// certificates.
type pki struct {
	t    *testing.T
	dir  string
	cert *x509.Certificate
	key  *ecdsa.PrivateKey
	pool *x509.CertPool
}

func newPKI(t *testing.T) *pki {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "test CA"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		IsCA: true, BasicConstraintsValid: true, KeyUsage: x509.KeyUsageCertSign,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	cert, _ := x509.ParseCertificate(der)
	p := &pki{t: t, dir: t.TempDir(), cert: cert, key: key, pool: x509.NewCertPool()}
	p.pool.AddCert(cert)
	p.write("ca.pem", "CERTIFICATE", der)
	return p
}

func (p *pki) write(name, typ string, der []byte) string {
	path := filepath.Join(p.dir, name)
	if err := os.WriteFile(path, pem.EncodeToMemory(&pem.Block{Type: typ, Bytes: der}), 0o600); err != nil {
		p.t.Fatal(err)
	}
	return path
}

// issue makes a leaf certificate; server ones are for 127.0.0.1.
func (p *pki) issue(cn string, uri string, server bool, serial int64) tls.Certificate {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		p.t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(serial), Subject: pkix.Name{CommonName: cn},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		KeyUsage: x509.KeyUsageDigitalSignature, ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth},
	}
	if server {
		tmpl.ExtKeyUsage = []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}
		tmpl.IPAddresses = []net.IP{net.ParseIP("127.0.0.1")}
	}
	if uri != "" {
		u, _ := url.Parse(uri)
		tmpl.URIs = []*url.URL{u}
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, p.cert, &key.PublicKey, p.key)
	if err != nil {
		p.t.Fatal(err)
	}
	leaf, _ := x509.ParseCertificate(der)
	return tls.Certificate{Certificate: [][]byte{der}, PrivateKey: key, Leaf: leaf}
}

// writePair writes c as name.pem and name-key.pem.
func (p *pki) writePair(name string, c tls.Certificate) (certFile, keyFile string) {
	kder, err := x509.MarshalPKCS8PrivateKey(c.PrivateKey)
	if err != nil {
		p.t.Fatal(err)
	}
	// Write the key first: a reader between the two writes sees a
	// mismatch and keeps the previous pair.
	keyFile = p.write(name+"-key.pem", "PRIVATE KEY", kder)
	certFile = p.write(name+".pem", "CERTIFICATE", c.Certificate[0])
	return certFile, keyFile
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
	p := newPKI(t)
	certFile, keyFile := p.writePair("server", p.issue("server-1", "", true, 10))
	seen := &seenIdentity{}
	ts := startServer(t, serverSetup{
		register: registerUnimplemented,
		config: func(c *config.Config) {
			c.TLSCertFile, c.TLSKeyFile, c.TLSClientCAFile = certFile, keyFile, filepath.Join(p.dir, "ca.pem")
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
	cn := p.issue("carol", "", false, 20)
	if err := call(dialTLS(t, ts.addr, p.pool, &cn)); status.Code(err) != codes.Unimplemented {
		t.Fatalf("with a client certificate: %v", err)
	}
	if got := seen.last(); got != (auth.Identity{Name: "carol", Method: auth.MethodMTLS}) {
		t.Errorf("identity %+v; want carol by mTLS", got)
	}
	uri := p.issue("ignored", "spiffe://test/caller", false, 21)
	if err := call(dialTLS(t, ts.addr, p.pool, &uri)); status.Code(err) != codes.Unimplemented {
		t.Fatalf("with a URI SAN certificate: %v", err)
	}
	if got := seen.last(); got != (auth.Identity{Name: "spiffe://test/caller", Role: "batch", Method: auth.MethodMTLS}) {
		t.Errorf("identity %+v; want the URI SAN with role batch", got)
	}

	// No client certificate: the handshake is refused.
	if err := call(dialTLS(t, ts.addr, p.pool, nil)); status.Code(err) != codes.Unavailable {
		t.Errorf("without a client certificate: %v; want UNAVAILABLE (handshake refused)", err)
	}

	// The server certificate is re-read when its files change: a new
	// connection sees the new one.
	p.writePair("server", p.issue("server-2", "", true, 11))
	var got string
	conn, err := tls.Dial("tcp", ts.addr, &tls.Config{RootCAs: p.pool, Certificates: []tls.Certificate{cn}, NextProtos: []string{"h2"}})
	if err != nil {
		t.Fatal(err)
	}
	got = conn.ConnectionState().PeerCertificates[0].Subject.CommonName
	conn.Close()
	if got != "server-2" {
		t.Errorf("server certificate after the files changed: %s; want server-2", got)
	}
}
