package agentpool_test

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"errors"
	"math/big"
	"net"
	"net/netip"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/httpgateway/httpgateway/internal/testutil"

	"github.com/httpgateway/httpgateway/internal/agentpool"
	"github.com/httpgateway/httpgateway/internal/nodeerr"
)

func TestDialErrors(t *testing.T) {
	loop4 := netip.MustParseAddr("127.0.0.1")
	loop6 := netip.MustParseAddr("::1")
	tests := []struct {
		name     string
		target   func(t *testing.T) agentpool.Target
		resolver fakeResolver
		check    func(ctx context.Context, host string, ap netip.AddrPort) error
		code     string
		message  string
		noSocket bool // fails before any socket: OnSocket(nil, err)
	}{
		{
			name: "connection refused",
			target: func(t *testing.T) agentpool.Target {
				ln := listenTCP(t)
				port := ln.Addr().(*net.TCPAddr).Port
				ln.Close()
				return target(port)
			},
			code: nodeerr.ECONNREFUSED, message: "connect ECONNREFUSED 127.0.0.1:",
		},
		{
			name: "name not found",
			target: func(*testing.T) agentpool.Target {
				return agentpool.Target{Protocol: "http:", Host: "nope.test", Port: 80}
			},
			code: nodeerr.ENOTFOUND, message: "getaddrinfo ENOTFOUND nope.test",
		},
		{
			name: "DNS timeout",
			target: func(*testing.T) agentpool.Target {
				return agentpool.Target{Protocol: "http:", Host: "slow.test", Port: 80}
			},
			resolver: fakeResolver{answers: map[string][]netip.Addr{"slow.test": nil}},
			code:     nodeerr.EAI_AGAIN, message: "getaddrinfo EAI_AGAIN slow.test",
		},
		{
			name: "temporary DNS failure",
			target: func(*testing.T) agentpool.Target {
				return agentpool.Target{Protocol: "http:", Host: "flaky.test", Port: 80}
			},
			resolver: fakeResolver{errs: map[string]error{"flaky.test": &net.DNSError{Name: "flaky.test", Err: "server misbehaving", IsTemporary: true}}},
			code:     nodeerr.EAI_AGAIN,
		},
		{
			name: "family 4 but only IPv6 answers",
			target: func(*testing.T) agentpool.Target {
				return agentpool.Target{Protocol: "http:", Host: "v6.test", Port: 80, Family: 4}
			},
			resolver: fakeResolver{answers: map[string][]netip.Addr{"v6.test": {loop6}}},
			code:     nodeerr.ENOTFOUND,
		},
		{
			name: "egress denied",
			target: func(*testing.T) agentpool.Target {
				return agentpool.Target{Protocol: "http:", Host: "svc.test", Port: 9}
			},
			resolver: fakeResolver{answers: map[string][]netip.Addr{"svc.test": {loop4}}},
			check: func(_ context.Context, host string, ap netip.AddrPort) error {
				if host != "svc.test" || ap != netip.AddrPortFrom(loop4, 9) {
					return errors.New("unexpected check arguments")
				}
				return errors.New("loopback denied by policy")
			},
			code: nodeerr.ERR_GATEWAY_EGRESS_DENIED, message: "egress to svc.test (127.0.0.1:9) denied",
		},
		{
			name: "egress denial as a node error",
			target: func(t *testing.T) agentpool.Target {
				return target(9)
			},
			check: func(context.Context, string, netip.AddrPort) error { return nodeerr.New("ERR_POLICY", "nope") },
			code:  "ERR_POLICY",
		},
		{
			name: "unix socket missing",
			target: func(t *testing.T) agentpool.Target {
				return agentpool.Target{Protocol: "http:", Host: "localhost", SocketPath: filepath.Join(t.TempDir(), "none.sock")}
			},
			code: nodeerr.ENOENT,
		},
		{
			name: "bad local address",
			target: func(*testing.T) agentpool.Target {
				return agentpool.Target{Protocol: "http:", Host: "127.0.0.1", Port: 9, LocalAddress: "nope"}
			},
			code: nodeerr.ERR_INVALID_ARG_VALUE,
		},
		{
			name: "invalid protocol",
			target: func(*testing.T) agentpool.Target {
				return agentpool.Target{Protocol: "ftp:", Host: "127.0.0.1", Port: 21}
			},
			code:     nodeerr.ERR_INVALID_PROTOCOL,
			noSocket: true,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			testutil.CheckLeaks(t)
			a := newAgent(t, keepAliveOptions(), agentpool.Deps{Resolver: tt.resolver, DNSTimeout: 50 * time.Millisecond, Check: tt.check})
			x := newExchange("/", autoRelease)
			a.Acquire(tt.target(t), x)
			ev := recv(t, x.socketCh, "socket")
			var err error
			if tt.noSocket {
				if ev.s != nil {
					t.Fatal("got a socket")
				}
				err = ev.err
			} else {
				if ev.err != nil {
					t.Fatalf("OnSocket error %v", ev.err)
				}
				err = recv(t, x.connectCh, "connect")
			}
			if got := nodeerr.Code(err); got != tt.code {
				t.Fatalf("error %v: code %q, want %q", err, got, tt.code)
			}
			if nodeerr.As(err) == nil {
				t.Fatalf("error %T is not a *nodeerr.Error", err)
			}
			if !strings.Contains(err.Error(), tt.message) {
				t.Fatalf("error %q does not contain %q", err, tt.message)
			}
			if s := a.Snapshot(); s.TotalSockets != 0 || len(s.Names) != 0 {
				t.Fatalf("failed socket left in pool: %+v", s)
			}
		})
	}
}

// TestEgressCheckEveryAddress: the hook sees every resolved address, and
// the address dialed is the one it allowed.
func TestEgressCheckEveryAddress(t *testing.T) {
	testutil.CheckLeaks(t)
	up := startHTTP(t, okHandler())
	var mu sync.Mutex
	var checked []netip.AddrPort
	deps := agentpool.Deps{
		Resolver: fakeResolver{answers: map[string][]netip.Addr{"svc.test": {netip.MustParseAddr("::1"), netip.MustParseAddr("127.0.0.1")}}},
		Check: func(_ context.Context, _ string, ap netip.AddrPort) error {
			mu.Lock()
			checked = append(checked, ap)
			mu.Unlock()
			if ap.Addr().Is6() {
				return errors.New("IPv6 denied")
			}
			return nil
		},
	}
	a := newAgent(t, keepAliveOptions(), deps)
	x, r := do(t, a, agentpool.Target{Protocol: "http:", Host: "svc.test", Port: up.port}, autoRelease)
	if r.err != nil {
		t.Fatal(r.err)
	}
	if got := x.socket().Info(); got.RemoteAddress != "127.0.0.1" || got.RemotePort != up.port {
		t.Fatalf("dialed %s:%d", got.RemoteAddress, got.RemotePort)
	}
	mu.Lock()
	defer mu.Unlock()
	if len(checked) != 2 {
		t.Fatalf("checked %v, want both addresses", checked)
	}
}

func TestUnixSocket(t *testing.T) {
	testutil.CheckLeaks(t)
	path := filepath.Join(t.TempDir(), "up.sock")
	ln, err := net.Listen("unix", path)
	if err != nil {
		t.Fatal(err)
	}
	startUpstream(t, ln, okHandler())
	a := newAgent(t, keepAliveOptions(), agentpool.Deps{})
	tg := agentpool.Target{Protocol: "http:", Host: "localhost", SocketPath: path}
	if got, want := a.GetName(tg), "localhost:::"+path; got != want {
		t.Fatalf("GetName = %q, want %q", got, want)
	}
	sub := a.Subscribe(64)
	x, r := do(t, a, tg, autoRelease)
	if r.err != nil || r.body != "ok" {
		t.Fatalf("%+v", r)
	}
	if info := x.socket().Info(); info.Family != 0 || info.RemoteAddress != path {
		t.Fatalf("info %+v", info)
	}
	waitEvent(t, sub, isType(agentpool.EventSocketFreed))
	if _, r := do(t, a, tg, autoRelease); r.err != nil || !r.reused {
		t.Fatalf("second request %+v", r)
	}
}

// ---- TLS ----

type testPKI struct {
	caPEM                []byte
	caCert               *x509.Certificate
	caKey                *ecdsa.PrivateKey
	good, expired, wrong tls.Certificate
	selfSigned           tls.Certificate
}

func newPKI(t *testing.T) *testPKI {
	t.Helper()
	p := &testPKI{}
	key, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "agentpool test CA"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		IsCA: true, BasicConstraintsValid: true, KeyUsage: x509.KeyUsageCertSign,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	p.caCert, _ = x509.ParseCertificate(der)
	p.caKey = key
	p.caPEM = pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der})
	now := time.Now()
	p.good = p.leaf(t, "127.0.0.1", []net.IP{net.ParseIP("127.0.0.1")}, now.Add(-time.Hour), now.Add(time.Hour), false)
	p.expired = p.leaf(t, "127.0.0.1", []net.IP{net.ParseIP("127.0.0.1")}, now.Add(-2*time.Hour), now.Add(-time.Hour), false)
	p.wrong = p.leaf(t, "other.test", nil, now.Add(-time.Hour), now.Add(time.Hour), false)
	p.selfSigned = p.leaf(t, "127.0.0.1", []net.IP{net.ParseIP("127.0.0.1")}, now.Add(-time.Hour), now.Add(time.Hour), true)
	return p
}

func (p *testPKI) leaf(t *testing.T, cn string, ips []net.IP, nb, na time.Time, self bool) tls.Certificate {
	key, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(time.Now().UnixNano()), Subject: pkix.Name{CommonName: cn},
		NotBefore: nb, NotAfter: na, IPAddresses: ips, KeyUsage: x509.KeyUsageDigitalSignature,
		ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
	}
	if cn != "127.0.0.1" {
		tmpl.DNSNames = []string{cn}
	}
	parent, signer := p.caCert, any(p.caKey)
	if self {
		parent, signer = tmpl, key
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, parent, &key.PublicKey, signer)
	if err != nil {
		t.Fatal(err)
	}
	return tls.Certificate{Certificate: [][]byte{der}, PrivateKey: key}
}

func startTLS(t *testing.T, cert tls.Certificate) *upstream {
	t.Helper()
	ln := tls.NewListener(listenTCP(t), &tls.Config{Certificates: []tls.Certificate{cert}, NextProtos: []string{"http/1.1"}})
	u := startUpstream(t, ln, okHandler())
	u.port = ln.Addr().(*net.TCPAddr).Port
	return u
}

func TestTLS(t *testing.T) {
	pki := newPKI(t)
	no := false
	tests := []struct {
		name string
		cert func() tls.Certificate
		opts agentpool.TLSOptions
		code string
	}{
		{name: "trusted CA", cert: func() tls.Certificate { return pki.good }, opts: agentpool.TLSOptions{CA: pki.caPEM}},
		{name: "unknown issuer", cert: func() tls.Certificate { return pki.good }, code: nodeerr.UNABLE_TO_VERIFY_LEAF_SIGNATURE},
		{name: "self-signed", cert: func() tls.Certificate { return pki.selfSigned }, opts: agentpool.TLSOptions{CA: pki.caPEM}, code: nodeerr.DEPTH_ZERO_SELF_SIGNED_CERT},
		{name: "wrong name", cert: func() tls.Certificate { return pki.wrong }, opts: agentpool.TLSOptions{CA: pki.caPEM}, code: nodeerr.ERR_TLS_CERT_ALTNAME_INVALID},
		{name: "servername mismatch", cert: func() tls.Certificate { return pki.good }, opts: agentpool.TLSOptions{CA: pki.caPEM, ServerName: "other.test"}, code: nodeerr.ERR_TLS_CERT_ALTNAME_INVALID},
		{name: "expired", cert: func() tls.Certificate { return pki.expired }, opts: agentpool.TLSOptions{CA: pki.caPEM}, code: nodeerr.CERT_HAS_EXPIRED},
		{name: "rejectUnauthorized false", cert: func() tls.Certificate { return pki.selfSigned }, opts: agentpool.TLSOptions{RejectUnauthorized: &no}},
		{name: "TLS 1.2 with OpenSSL cipher names", cert: func() tls.Certificate { return pki.good },
			opts: agentpool.TLSOptions{CA: pki.caPEM, MaxVersion: "TLSv1.2", Ciphers: "ECDHE-ECDSA-AES128-GCM-SHA256"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			testutil.CheckLeaks(t)
			up := startTLS(t, tt.cert())
			a := newAgent(t, keepAliveOptions(), agentpool.Deps{})
			opts := tt.opts
			tg := agentpool.Target{Protocol: "https:", Host: "127.0.0.1", Port: up.port, TLS: &opts}
			x, r := do(t, a, tg, autoRelease)
			if got := nodeerr.Code(r.err); got != tt.code {
				t.Fatalf("error %v: code %q, want %q", r.err, got, tt.code)
			}
			if tt.code != "" {
				return
			}
			info := x.socket().Info()
			if info.TLS == nil || info.TLS.ALPN != "http/1.1" || !strings.Contains(info.TLS.PeerSubject, "CN=127.0.0.1") {
				t.Fatalf("TLS info %+v", info.TLS)
			}
			wantVersion := "TLSv1.3"
			if opts.MaxVersion != "" {
				wantVersion = opts.MaxVersion
			}
			if info.TLS.Version != wantVersion {
				t.Fatalf("version %q, want %q", info.TLS.Version, wantVersion)
			}
			if opts.Ciphers != "" && info.TLS.CipherSuite != "TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256" {
				t.Fatalf("cipher %q", info.TLS.CipherSuite)
			}
		})
	}
}

// TestTLSSessionResumption: a new connection under the same name resumes
// the session the agent cached.
func TestTLSSessionResumption(t *testing.T) {
	testutil.CheckLeaks(t)
	pki := newPKI(t)
	up := startTLS(t, pki.good)
	a := newAgent(t, agentpool.DefaultOptions(), agentpool.Deps{}) // keepAlive false: one socket per request
	tg := agentpool.Target{Protocol: "https:", Host: "127.0.0.1", Port: up.port, TLS: &agentpool.TLSOptions{CA: pki.caPEM}}
	x1, r1 := do(t, a, tg, autoRelease)
	if r1.err != nil {
		t.Fatal(r1.err)
	}
	if x1.socket().Info().TLS.Resumed {
		t.Fatal("first connection resumed")
	}
	x2, r2 := do(t, a, tg, autoRelease)
	if r2.err != nil || r2.reused {
		t.Fatalf("second request %+v", r2)
	}
	if !x2.socket().Info().TLS.Resumed {
		t.Fatal("second connection did not resume the TLS session")
	}
}
