package agentpool

import (
	"bytes"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"strings"
	"sync"
	"time"

	"github.com/httpgateway/httpgateway/internal/nodeerr"
)

// OpenSSL verification codes Node reports that nodeerr does not (yet)
// name. Codes are plain strings on the wire.
const (
	codeSelfSignedCertInChain        = "SELF_SIGNED_CERT_IN_CHAIN"
	codeUnableToGetIssuerCertLocally = "UNABLE_TO_GET_ISSUER_CERT_LOCALLY"
	codeCertNotYetValid              = "CERT_NOT_YET_VALID"
	codeNoCipherMatch                = "ERR_SSL_NO_CIPHER_MATCH"
)

var tlsVersions = map[string]uint16{
	"TLSv1":   tls.VersionTLS10,
	"TLSv1.1": tls.VersionTLS11,
	"TLSv1.2": tls.VersionTLS12,
	"TLSv1.3": tls.VersionTLS13,
}

func tlsVersion(opt, v string) (uint16, error) {
	if v == "" {
		return 0, nil
	}
	if n, ok := tlsVersions[v]; ok {
		return n, nil
	}
	return 0, nodeerr.New(nodeerr.ERR_INVALID_ARG_VALUE,
		fmt.Sprintf("The property 'options.%s' must be one of: 'TLSv1.3', 'TLSv1.2', 'TLSv1.1', 'TLSv1'. Received '%s'", opt, v))
}

func tlsVersionName(v uint16) string {
	for name, n := range tlsVersions {
		if n == v {
			return name
		}
	}
	return fmt.Sprintf("0x%04x", v)
}

// openSSLCiphers maps the OpenSSL names Node accepts to Go's TLS 1.2
// suites.
var openSSLCiphers = map[string]uint16{
	"ECDHE-ECDSA-AES128-GCM-SHA256": tls.TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256,
	"ECDHE-RSA-AES128-GCM-SHA256":   tls.TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256,
	"ECDHE-ECDSA-AES256-GCM-SHA384": tls.TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384,
	"ECDHE-RSA-AES256-GCM-SHA384":   tls.TLS_ECDHE_RSA_WITH_AES_256_GCM_SHA384,
	"ECDHE-ECDSA-CHACHA20-POLY1305": tls.TLS_ECDHE_ECDSA_WITH_CHACHA20_POLY1305_SHA256,
	"ECDHE-RSA-CHACHA20-POLY1305":   tls.TLS_ECDHE_RSA_WITH_CHACHA20_POLY1305_SHA256,
	"ECDHE-ECDSA-AES128-SHA":        tls.TLS_ECDHE_ECDSA_WITH_AES_128_CBC_SHA,
	"ECDHE-RSA-AES128-SHA":          tls.TLS_ECDHE_RSA_WITH_AES_128_CBC_SHA,
	"ECDHE-ECDSA-AES256-SHA":        tls.TLS_ECDHE_ECDSA_WITH_AES_256_CBC_SHA,
	"ECDHE-RSA-AES256-SHA":          tls.TLS_ECDHE_RSA_WITH_AES_256_CBC_SHA,
	"AES128-GCM-SHA256":             tls.TLS_RSA_WITH_AES_128_GCM_SHA256,
	"AES256-GCM-SHA384":             tls.TLS_RSA_WITH_AES_256_GCM_SHA384,
	"AES128-SHA":                    tls.TLS_RSA_WITH_AES_128_CBC_SHA,
	"AES256-SHA":                    tls.TLS_RSA_WITH_AES_256_CBC_SHA,
}

// cipherSuites parses a Node ciphers string. TLS 1.3 suite names are
// accepted but cannot restrict Go's TLS 1.3 suites; unknown names are
// skipped as OpenSSL skips them; nothing usable at all is Node's
// "no cipher match".
func cipherSuites(list string) ([]uint16, error) {
	if list == "" {
		return nil, nil
	}
	var ids []uint16
	tls13 := false
	for _, name := range strings.FieldsFunc(list, func(r rune) bool { return r == ':' || r == ',' || r == ' ' }) {
		if id, ok := openSSLCiphers[name]; ok {
			ids = append(ids, id)
			continue
		}
		if strings.HasPrefix(name, "TLS_AES_") || strings.HasPrefix(name, "TLS_CHACHA20_") {
			tls13 = true
			continue
		}
		for _, cs := range tls.CipherSuites() {
			if cs.Name == name {
				ids = append(ids, cs.ID)
			}
		}
	}
	if len(ids) == 0 && !tls13 {
		return nil, nodeerr.New(codeNoCipherMatch, "No cipher match")
	}
	return ids, nil
}

// tlsConfigCache keeps one *tls.Config per agent name, so PEM parsing
// happens once per name, not per dial.
type tlsConfigCache struct {
	mu sync.Mutex // guards m
	m  map[string]*tls.Config
}

const maxTLSConfigs = 256

func (a *Agent) tlsConfig(name string, t Target) (*tls.Config, error) {
	return a.cachedTLSConfig(name, func() (*tls.Config, error) { return a.buildTLSConfig(name, t) })
}

// cachedTLSConfig returns the config cached under key, building it on a
// miss. Keys are agent names, and "proxy\x00"+name for the connection to
// an https proxy.
func (a *Agent) cachedTLSConfig(key string, build func() (*tls.Config, error)) (*tls.Config, error) {
	c := &a.tlsCache
	c.mu.Lock()
	cfg := c.m[key]
	c.mu.Unlock()
	if cfg != nil {
		return cfg, nil
	}
	cfg, err := build()
	if err != nil {
		return nil, err
	}
	c.mu.Lock()
	if c.m == nil || len(c.m) >= maxTLSConfigs {
		c.m = make(map[string]*tls.Config)
	}
	c.m[key] = cfg
	c.mu.Unlock()
	return cfg, nil
}

func (a *Agent) buildTLSConfig(name string, t Target) (*tls.Config, error) {
	o := t.TLS
	if o == nil {
		o = &TLSOptions{}
	}
	cfg := &tls.Config{
		NextProtos: []string{"http/1.1"},
		// Sessions are cached per agent name, as Node's https Agent keys
		// its session cache by name: a session made under one set of TLS
		// options is never offered under another.
		ClientSessionCache: namedSessionCache{inner: a.sessions, prefix: name + "\x00"},
	}
	cfg.ServerName = o.ServerName
	if cfg.ServerName == "" {
		// Go sends no SNI for an IP literal but verifies it against the
		// certificate's IP SANs, as Node's checkServerIdentity does.
		cfg.ServerName = t.Host
		if cfg.ServerName == "" {
			cfg.ServerName = "localhost"
		}
	}
	if len(o.CA) > 0 {
		pool := x509.NewCertPool()
		if !pool.AppendCertsFromPEM(o.CA) {
			return nil, nodeerr.New(nodeerr.ERR_INVALID_ARG_VALUE, "options.ca contains no PEM certificate")
		}
		cfg.RootCAs = pool
	}
	if len(o.Cert) > 0 || len(o.Key) > 0 {
		pair, err := tls.X509KeyPair(o.Cert, o.Key)
		if err != nil {
			return nil, nodeerr.Wrap(nodeerr.ERR_INVALID_ARG_VALUE, "options.cert/options.key: "+err.Error(), err)
		}
		cfg.Certificates = []tls.Certificate{pair}
	}
	if o.RejectUnauthorized != nil && !*o.RejectUnauthorized {
		cfg.InsecureSkipVerify = true
	}
	var err error
	if cfg.MinVersion, err = tlsVersion("minVersion", o.MinVersion); err != nil {
		return nil, err
	}
	if cfg.MaxVersion, err = tlsVersion("maxVersion", o.MaxVersion); err != nil {
		return nil, err
	}
	if cfg.CipherSuites, err = cipherSuites(o.Ciphers); err != nil {
		return nil, err
	}
	return cfg, nil
}

// namedSessionCache scopes a shared session cache to one agent name.
type namedSessionCache struct {
	inner  tls.ClientSessionCache
	prefix string
}

func (c namedSessionCache) Get(key string) (*tls.ClientSessionState, bool) {
	return c.inner.Get(c.prefix + key)
}

func (c namedSessionCache) Put(key string, cs *tls.ClientSessionState) {
	c.inner.Put(c.prefix+key, cs)
}

// tlsError maps a handshake error to Node's code where Go lets us tell:
// the OpenSSL verification codes for chain problems,
// ERR_TLS_CERT_ALTNAME_INVALID for a name mismatch, the socket codes for
// network failures, EPROTO for the rest.
func tlsError(err error, serverName string, t Target) error {
	addr, port := t.Host, t.Port
	var hostErr x509.HostnameError
	if errors.As(err, &hostErr) {
		return &nodeerr.Error{Code: nodeerr.ERR_TLS_CERT_ALTNAME_INVALID,
			Message: "Hostname/IP does not match certificate's altnames: " + hostErr.Error(), Err: err}
	}
	var invalid x509.CertificateInvalidError
	if errors.As(err, &invalid) && invalid.Reason == x509.Expired {
		if invalid.Cert != nil && time.Now().Before(invalid.Cert.NotBefore) {
			return &nodeerr.Error{Code: codeCertNotYetValid, Message: "certificate is not yet valid", Err: err}
		}
		return &nodeerr.Error{Code: nodeerr.CERT_HAS_EXPIRED, Message: "certificate has expired", Err: err}
	}
	var unknown x509.UnknownAuthorityError
	if errors.As(err, &unknown) {
		var chain []*x509.Certificate
		var verr *tls.CertificateVerificationError
		if errors.As(err, &verr) {
			chain = verr.UnverifiedCertificates
		}
		if len(chain) == 0 && unknown.Cert != nil {
			chain = []*x509.Certificate{unknown.Cert}
		}
		code, msg := nodeerr.UNABLE_TO_VERIFY_LEAF_SIGNATURE, "unable to verify the first certificate"
		switch {
		case len(chain) == 1 && selfSigned(chain[0]):
			code, msg = nodeerr.DEPTH_ZERO_SELF_SIGNED_CERT, "self-signed certificate"
		case len(chain) > 1 && selfSigned(chain[len(chain)-1]):
			code, msg = codeSelfSignedCertInChain, "self-signed certificate in certificate chain"
		case len(chain) > 1:
			code, msg = codeUnableToGetIssuerCertLocally, "unable to get local issuer certificate"
		}
		return &nodeerr.Error{Code: code, Message: msg, Err: err}
	}
	if ne := nodeerr.Classify(err, "read", addr, port); ne != nil {
		return ne
	}
	return &nodeerr.Error{Code: nodeerr.EPROTO, Message: "TLS handshake with " + serverName + " failed: " + err.Error(), Err: err}
}

// selfSigned reports whether c signed itself. CheckSignatureFrom would also
// demand that c be a CA, which a self-signed server leaf usually is not.
func selfSigned(c *x509.Certificate) bool {
	return bytes.Equal(c.RawIssuer, c.RawSubject) &&
		c.CheckSignature(c.SignatureAlgorithm, c.RawTBSCertificate, c.Signature) == nil
}
