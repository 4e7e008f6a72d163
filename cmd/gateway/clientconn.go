package main

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"flag"
	"fmt"
	"net"
	"net/netip"
	"os"
	"strings"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/credentials/insecure"
)

// clientEnvPrefix starts the environment variable of each client
// connection flag: --tls-ca-file is also GATEWAY_CLIENT_TLS_CA_FILE. (The
// serve settings' GATEWAY_* names are the server's own files and tokens;
// none starts with CLIENT_.)
const clientEnvPrefix = "GATEWAY_CLIENT_"

// clientConn holds the flags `gateway fetch` and `gateway healthcheck`
// share to reach a gateway that serves TLS (--tls-cert-file), asks for
// client certificates (--tls-client-ca-file) or bearer tokens
// (--auth-tokens-file).
type clientConn struct {
	tls                bool
	caFile             string
	certFile, keyFile  string
	serverName         string
	insecureSkipVerify bool
	token, tokenFile   string
}

// register adds the connection flags to fs.
func (c *clientConn) register(fs *flag.FlagSet) {
	fs.BoolVar(&c.tls, "tls", false, "connect with TLS, verifying the gateway against the system roots (implied by the other --tls-* flags)")
	fs.StringVar(&c.caFile, "tls-ca-file", "", "CA `file` (PEM) that verifies the gateway's certificate")
	fs.StringVar(&c.certFile, "tls-cert-file", "", "client certificate `file` (PEM) for a gateway that asks for one (mTLS)")
	fs.StringVar(&c.keyFile, "tls-key-file", "", "client private key `file` (PEM) for --tls-cert-file")
	fs.StringVar(&c.serverName, "tls-server-name", "", "`name` the gateway's certificate must carry (default: the host of --addr)")
	fs.BoolVar(&c.insecureSkipVerify, "tls-insecure-skip-verify", false, "do not verify the gateway's certificate (testing only)")
	fs.StringVar(&c.token, "token", "", "bearer `token` for a gateway with token authentication (visible to other local users: prefer GATEWAY_CLIENT_TOKEN or --token-file)")
	fs.StringVar(&c.tokenFile, "token-file", "", "read the bearer token from `file`")
}

// applyEnv fills the flags not given on the command line from their
// GATEWAY_CLIENT_* variables.
func (c *clientConn) applyEnv(fs *flag.FlagSet, lookupEnv func(string) (string, bool)) error {
	set := map[string]bool{}
	fs.Visit(func(f *flag.Flag) { set[f.Name] = true })
	for _, name := range []string{"tls", "tls-ca-file", "tls-cert-file", "tls-key-file", "tls-server-name",
		"tls-insecure-skip-verify", "token", "token-file"} {
		if set[name] {
			continue
		}
		env := clientEnvPrefix + strings.ToUpper(strings.ReplaceAll(name, "-", "_"))
		v, ok := lookupEnv(env)
		if !ok {
			continue
		}
		if err := fs.Set(name, v); err != nil {
			if name == "token" {
				return fmt.Errorf("environment %s: invalid value", env)
			}
			return fmt.Errorf("environment %s: %w", env, err)
		}
	}
	return nil
}

// dialOptions returns the credentials to reach addr with: TLS when asked
// for, a bearer token on every call when one is given. A token is refused
// over plaintext except to a loopback address: anyone on the path could
// read it.
func (c *clientConn) dialOptions(addr string) ([]grpc.DialOption, error) {
	token := c.token
	if c.tokenFile != "" {
		b, err := os.ReadFile(c.tokenFile)
		if err != nil {
			return nil, err
		}
		token = strings.TrimSpace(string(b))
		if token == "" {
			return nil, fmt.Errorf("token file %s is empty", c.tokenFile)
		}
	}
	useTLS := c.tls || c.caFile != "" || c.certFile != "" || c.keyFile != "" || c.serverName != "" || c.insecureSkipVerify
	var opts []grpc.DialOption
	if useTLS {
		cfg, err := c.tlsConfig()
		if err != nil {
			return nil, err
		}
		opts = append(opts, grpc.WithTransportCredentials(credentials.NewTLS(cfg)))
	} else {
		if token != "" && !loopbackAddr(addr) {
			return nil, fmt.Errorf("a bearer token is only sent over TLS (--tls, --tls-ca-file) unless the gateway is on loopback; %s is not", addr)
		}
		opts = append(opts, grpc.WithTransportCredentials(insecure.NewCredentials()))
	}
	if token != "" {
		opts = append(opts, grpc.WithPerRPCCredentials(bearerToken(token)))
	}
	return opts, nil
}

func (c *clientConn) tlsConfig() (*tls.Config, error) {
	cfg := &tls.Config{MinVersion: tls.VersionTLS12, ServerName: c.serverName, InsecureSkipVerify: c.insecureSkipVerify}
	if c.caFile != "" {
		pem, err := os.ReadFile(c.caFile)
		if err != nil {
			return nil, err
		}
		pool := x509.NewCertPool()
		if !pool.AppendCertsFromPEM(pem) {
			return nil, fmt.Errorf("%s: no PEM certificate", c.caFile)
		}
		cfg.RootCAs = pool
	}
	if (c.certFile == "") != (c.keyFile == "") {
		return nil, errors.New("--tls-cert-file and --tls-key-file go together")
	}
	if c.certFile != "" {
		cert, err := tls.LoadX509KeyPair(c.certFile, c.keyFile)
		if err != nil {
			return nil, fmt.Errorf("client certificate: %w", err)
		}
		cfg.Certificates = []tls.Certificate{cert}
	}
	return cfg, nil
}

// loopbackAddr reports whether host:port names a loopback address
// ("localhost" included).
func loopbackAddr(addr string) bool {
	host, _, err := net.SplitHostPort(addr)
	if err != nil {
		return false
	}
	if strings.EqualFold(host, "localhost") {
		return true
	}
	ip, err := netip.ParseAddr(host)
	return err == nil && ip.IsLoopback()
}

// bearerToken sends "authorization: Bearer <token>" with every call.
// dialOptions decides when plaintext is acceptable, so it does not ask
// gRPC to require transport security.
type bearerToken string

func (t bearerToken) GetRequestMetadata(context.Context, ...string) (map[string]string, error) {
	return map[string]string{"authorization": "Bearer " + string(t)}, nil
}

func (t bearerToken) RequireTransportSecurity() bool { return false }
