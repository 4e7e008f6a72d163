package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/httpgateway/httpgateway/internal/testutil"
)

const clientToken = "client-token-0123456789abcdef"

// TestClientTLSAndToken runs `gateway serve` with server TLS and bearer
// tokens, then with mTLS, and drives `gateway fetch` and `gateway
// healthcheck` against them with every way of giving the connection
// options: flags, GATEWAY_CLIENT_* variables, a token file.
func TestClientTLSAndToken(t *testing.T) {
	testutil.CheckLeaks(t)
	up := echoUpstream(t)
	pki := testutil.NewPKI(t)
	serverCert, serverKey := pki.Issue(t, "gateway", true)
	clientCert, clientKey := pki.Issue(t, "alice", false)
	tokens := filepath.Join(pki.Dir, "tokens")
	tokenFile := filepath.Join(pki.Dir, "my-token")
	for path, body := range map[string]string{tokens: clientToken + " alice\n", tokenFile: clientToken + "\n"} {
		if err := os.WriteFile(path, []byte(body), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	tokenTLS := startServe(t, "--tls-cert-file", serverCert, "--tls-key-file", serverKey,
		"--auth-tokens-file", tokens, "--egress-allow", "127.0.0.1/32")
	mtls := startServe(t, "--tls-cert-file", serverCert, "--tls-key-file", serverKey,
		"--tls-client-ca-file", pki.CAFile, "--egress-allow", "127.0.0.1/32")
	url := up.URL + "/x"

	tests := []struct {
		name     string
		env      map[string]string
		args     []string
		wantCode int
		wantOut  string // stdout, checked when the command succeeds
		wantErr  string // in stderr, checked when it fails
	}{
		{name: "fetch: CA and token flags", args: []string{"fetch", "--addr", tokenTLS, "--tls-ca-file", pki.CAFile, "--token", clientToken, url},
			wantOut: "GET :"},
		{name: "fetch: token and CA from the environment",
			env:  map[string]string{"GATEWAY_CLIENT_TOKEN": clientToken, "GATEWAY_CLIENT_TLS_CA_FILE": pki.CAFile},
			args: []string{"fetch", "--addr", tokenTLS, url}, wantOut: "GET :"},
		{name: "fetch: token file, -v", args: []string{"fetch", "--addr", tokenTLS, "--tls-ca-file", pki.CAFile, "--token-file", tokenFile, "-v", url},
			wantOut: "GET :"},
		{name: "fetch: a flag wins over the environment", env: map[string]string{"GATEWAY_CLIENT_TOKEN": "wrong-token-0123456789"},
			args: []string{"fetch", "--addr", tokenTLS, "--tls-ca-file", pki.CAFile, "--token", clientToken, url}, wantOut: "GET :"},
		{name: "fetch: no token", args: []string{"fetch", "--addr", tokenTLS, "--tls-ca-file", pki.CAFile, url},
			wantCode: exitFailure, wantErr: "gRPC Unauthenticated"},
		{name: "fetch: unknown token", args: []string{"fetch", "--addr", tokenTLS, "--tls-ca-file", pki.CAFile, "--token", "not-a-known-token-0123", url},
			wantCode: exitFailure, wantErr: "gRPC Unauthenticated"},
		{name: "fetch: plaintext to a TLS gateway", args: []string{"fetch", "--addr", tokenTLS, "--token", clientToken, url},
			wantCode: exitFailure, wantErr: "gRPC Unavailable"},
		{name: "fetch: certificate not trusted", args: []string{"fetch", "--addr", tokenTLS, "--tls", "--token", clientToken, url},
			wantCode: exitFailure, wantErr: "certificate"},
		{name: "fetch: wrong server name", args: []string{"fetch", "--addr", tokenTLS, "--tls-ca-file", pki.CAFile, "--tls-server-name", "other.example", "--token", clientToken, url},
			wantCode: exitFailure, wantErr: "other.example"},
		{name: "fetch: insecure skip verify", args: []string{"fetch", "--addr", tokenTLS, "--tls-insecure-skip-verify", "--token", clientToken, url},
			wantOut: "GET :"},
		{name: "fetch: client certificate (mTLS)", args: []string{"fetch", "--addr", mtls, "--tls-ca-file", pki.CAFile,
			"--tls-cert-file", clientCert, "--tls-key-file", clientKey, url}, wantOut: "GET :"},
		{name: "fetch: client certificate from the environment",
			env:  map[string]string{"GATEWAY_CLIENT_TLS_CA_FILE": pki.CAFile, "GATEWAY_CLIENT_TLS_CERT_FILE": clientCert, "GATEWAY_CLIENT_TLS_KEY_FILE": clientKey},
			args: []string{"fetch", "--addr", mtls, url}, wantOut: "GET :"},
		{name: "fetch: no client certificate", args: []string{"fetch", "--addr", mtls, "--tls-ca-file", pki.CAFile, url},
			wantCode: exitFailure, wantErr: "gRPC Unavailable"},
		{name: "fetch: token in clear to a remote address", args: []string{"fetch", "--addr", "192.0.2.1:50051", "--token", clientToken, url},
			wantCode: exitUsage, wantErr: "only sent over TLS"},
		{name: "fetch: certificate without its key", args: []string{"fetch", "--addr", mtls, "--tls-cert-file", clientCert, url},
			wantCode: exitUsage, wantErr: "go together"},
		{name: "fetch: bad boolean in the environment", env: map[string]string{"GATEWAY_CLIENT_TLS": "maybe"},
			args: []string{"fetch", "--addr", tokenTLS, url}, wantCode: exitUsage, wantErr: "GATEWAY_CLIENT_TLS"},
		{name: "healthcheck: TLS, no token needed", args: []string{"healthcheck", "--addr", tokenTLS, "--tls-ca-file", pki.CAFile},
			wantOut: "SERVING\n"},
		{name: "healthcheck: plaintext to a TLS gateway", args: []string{"healthcheck", "--addr", tokenTLS},
			wantCode: exitFailure, wantErr: "Unavailable"},
		{name: "healthcheck: mTLS", args: []string{"healthcheck", "--addr", mtls, "--tls-ca-file", pki.CAFile,
			"--tls-cert-file", clientCert, "--tls-key-file", clientKey}, wantOut: "SERVING\n"},
		{name: "healthcheck: mTLS from the environment",
			env:  map[string]string{"GATEWAY_CLIENT_TLS_CA_FILE": pki.CAFile, "GATEWAY_CLIENT_TLS_CERT_FILE": clientCert, "GATEWAY_CLIENT_TLS_KEY_FILE": clientKey},
			args: []string{"healthcheck", "--addr", mtls}, wantOut: "SERVING\n"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			code, out, errOut := runIn(t, tt.env, tt.args...)
			if code != tt.wantCode {
				t.Fatalf("exit %d, want %d; stdout %q stderr %q", code, tt.wantCode, out, errOut)
			}
			if tt.wantCode == 0 && out != tt.wantOut {
				t.Fatalf("stdout %q, want %q (stderr %q)", out, tt.wantOut, errOut)
			}
			if tt.wantCode != 0 && !strings.Contains(errOut, tt.wantErr) {
				t.Fatalf("stderr %q does not mention %q", errOut, tt.wantErr)
			}
			if strings.Contains(errOut, clientToken) {
				t.Fatalf("the token was printed: %q", errOut)
			}
		})
	}
}
