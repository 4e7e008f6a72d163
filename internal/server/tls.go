package server

import (
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"sync"
	"time"
)

// tlsCheckInterval is how often, at most, the TLS files are looked at for
// changes (on handshakes; no goroutine).
const tlsCheckInterval = time.Second

// tlsFiles serves the gRPC listener's certificate and client CAs from their
// files, re-reading them when a file's modification time or size changed,
// so a renewed certificate (cert-manager, a rotated secret) is picked up
// without a restart. A reload that fails (a half-written file, a key that
// does not match) is logged and the previous material stays in force.
type tlsFiles struct {
	certFile, keyFile, caFile string
	log                       *slog.Logger
	interval                  time.Duration

	mu        sync.Mutex // guards the fields below
	stamps    [3]fileStamp
	cert      *tls.Certificate
	pool      *x509.CertPool // nil: no client certificates asked for
	lastCheck time.Time
}

type fileStamp struct {
	mod  time.Time
	size int64
}

func stampOf(path string) (fileStamp, error) {
	if path == "" {
		return fileStamp{}, nil
	}
	st, err := os.Stat(path)
	if err != nil {
		return fileStamp{}, err
	}
	return fileStamp{st.ModTime(), st.Size()}, nil
}

// newTLSFiles loads the files once; an error here stops the start.
func newTLSFiles(certFile, keyFile, caFile string, log *slog.Logger, interval time.Duration) (*tlsFiles, error) {
	f := &tlsFiles{certFile: certFile, keyFile: keyFile, caFile: caFile, log: log, interval: interval}
	f.mu.Lock()
	defer f.mu.Unlock()
	if err := f.loadLocked(); err != nil {
		return nil, err
	}
	f.lastCheck = time.Now()
	return f, nil
}

func (f *tlsFiles) loadLocked() error {
	var stamps [3]fileStamp
	for i, p := range []string{f.certFile, f.keyFile, f.caFile} {
		s, err := stampOf(p)
		if err != nil {
			return fmt.Errorf("server tls: %w", err)
		}
		stamps[i] = s
	}
	cert, err := tls.LoadX509KeyPair(f.certFile, f.keyFile)
	if err != nil {
		return fmt.Errorf("server tls: certificate and key: %w", err)
	}
	var pool *x509.CertPool
	if f.caFile != "" {
		pem, err := os.ReadFile(f.caFile)
		if err != nil {
			return fmt.Errorf("server tls: client CA: %w", err)
		}
		pool = x509.NewCertPool()
		if !pool.AppendCertsFromPEM(pem) {
			return errors.New("server tls: client CA file holds no PEM certificate")
		}
	}
	f.cert, f.pool, f.stamps = &cert, pool, stamps
	return nil
}

// current returns the certificate and CA pool in force, reloading them
// first if the files changed.
func (f *tlsFiles) current() (*tls.Certificate, *x509.CertPool) {
	f.mu.Lock()
	defer f.mu.Unlock()
	now := time.Now()
	if now.Sub(f.lastCheck) >= f.interval {
		f.lastCheck = now
		changed := false
		for i, p := range []string{f.certFile, f.keyFile, f.caFile} {
			if s, err := stampOf(p); err != nil || s != f.stamps[i] {
				changed = true
			}
		}
		if changed {
			if err := f.loadLocked(); err != nil {
				f.log.Error("TLS files changed but cannot be loaded; keeping the previous ones", "err", err)
			} else {
				f.log.Info("TLS files reloaded", "cert", f.certFile)
			}
		}
	}
	return f.cert, f.pool
}

// config is the listener's tls.Config: each handshake gets the current
// certificate and, with a client CA, requires a client certificate that
// chains to it (mTLS).
func (f *tlsFiles) config() *tls.Config {
	return &tls.Config{
		MinVersion: tls.VersionTLS12,
		NextProtos: []string{"h2"},
		GetConfigForClient: func(*tls.ClientHelloInfo) (*tls.Config, error) {
			cert, pool := f.current()
			c := &tls.Config{
				MinVersion:   tls.VersionTLS12,
				NextProtos:   []string{"h2"}, // gRPC requires ALPN h2
				Certificates: []tls.Certificate{*cert},
			}
			if pool != nil {
				c.ClientAuth, c.ClientCAs = tls.RequireAndVerifyClientCert, pool
			}
			return c, nil
		},
	}
}
