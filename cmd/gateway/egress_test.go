package main

import (
	"context"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/httpgateway/httpgateway/internal/testutil"
)

// TestServeEgressPolicy runs `gateway serve` in-process and fetches a
// loopback upstream through it: denied by the default policy (loopback is
// internal) with the rule named, allowed once --egress-allow opens it, and
// the gateway's own port denied even then.
func TestServeEgressPolicy(t *testing.T) {
	testutil.CheckLeaks(t)
	up := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, _ = w.Write([]byte("reached"))
	}))
	t.Cleanup(up.Close)

	for _, tc := range []struct {
		name      string
		extra     []string
		url       func(gw string) string
		wantCode  int
		wantOut   string
		wantInErr []string
	}{
		{name: "loopback denied by default", url: func(string) string { return up.URL },
			wantCode: 1, wantInErr: []string{"ERR_GATEWAY_EGRESS_DENIED", "PermissionDenied", "loopback"}},
		{name: "opened by --egress-allow", extra: []string{"--egress-allow", "127.0.0.1/32"}, url: func(string) string { return up.URL },
			wantCode: 0, wantOut: "reached"},
		{name: "own port denied even when allowed", extra: []string{"--egress-allow", "127.0.0.1/32"}, url: func(gw string) string { return "http://" + gw + "/" },
			wantCode: 1, wantInErr: []string{"ERR_GATEWAY_EGRESS_DENIED", "self"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ctx, stop := context.WithCancel(context.Background())
			serveIO := &testIO{}
			serveIO.stderr.watch = make(chan string, 16)
			done := make(chan int, 1)
			args := append([]string{"serve", "--listen", "127.0.0.1:0", "--shutdown-grace", "5s"}, tc.extra...)
			go func() { // ends when ctx is cancelled and the drain is over
				done <- run(ctx, args, serveIO.stdio())
			}()
			addr := waitListening(t, &serveIO.stderr, done)
			code, out, errOut := runIn(t, nil, "fetch", "--addr", addr, tc.url(addr))
			stop()
			select {
			case <-done:
			case <-time.After(15 * time.Second):
				t.Fatal("serve did not stop")
			}
			if code != tc.wantCode || out != tc.wantOut {
				t.Fatalf("fetch: exit %d stdout %q stderr %q", code, out, errOut)
			}
			for _, w := range tc.wantInErr {
				if !strings.Contains(errOut, w) {
					t.Errorf("fetch stderr lacks %q: %s", w, errOut)
				}
			}
		})
	}
}

// TestServeProxyFromEnv: with --proxy-from-env the global agent uses the
// process's HTTP_PROXY (here a real squid), and a bad proxy URL stops the
// start with a clear message.
func TestServeProxyFromEnv(t *testing.T) {
	testutil.CheckLeaks(t)
	t.Run("global agent through squid", func(t *testing.T) {
		sq := testutil.StartSquidProxy(t, testutil.SquidOptions{})
		up := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			_, _ = io.WriteString(w, "via="+r.Header.Get("Via"))
		}))
		t.Cleanup(up.Close)
		ctx, stop := context.WithCancel(context.Background())
		serveIO := &testIO{env: map[string]string{"http_proxy": sq.URL}}
		serveIO.stderr.watch = make(chan string, 16)
		done := make(chan int, 1)
		go func() { // ends when ctx is cancelled and the drain is over
			done <- run(ctx, []string{"serve", "--listen", "127.0.0.1:0", "--proxy-from-env", "--egress-allow", "127.0.0.1/32"}, serveIO.stdio())
		}()
		addr := waitListening(t, &serveIO.stderr, done)
		code, out, errOut := runIn(t, nil, "fetch", "--addr", addr, up.URL+"/")
		stop()
		<-done
		if code != 0 || !strings.Contains(out, "squid") {
			t.Fatalf("fetch: exit %d stdout %q stderr %q", code, out, errOut)
		}
	})
	t.Run("bad proxy URL", func(t *testing.T) {
		code, _, errOut := runIn(t, map[string]string{"HTTP_PROXY": "ftp://127.0.0.1:1"}, "serve", "--listen", "127.0.0.1:0", "--proxy-from-env")
		if code != exitUsage || !strings.Contains(errOut, "proxy") {
			t.Fatalf("exit %d, stderr %s", code, errOut)
		}
	})
}

// TestServeEgressRoles runs `gateway serve` with per-role egress settings
// and callers of three roles (tokens file), fetching through it with
// `gateway fetch --token`: each caller's requests dial under its role's
// policy, a report-only role's denial is logged and goes through, and so is
// every denial of a base policy in report-only mode.
func TestServeEgressRoles(t *testing.T) {
	testutil.CheckLeaks(t)
	reached := func(w http.ResponseWriter, _ *http.Request) { _, _ = w.Write([]byte("reached")) }
	upA := httptest.NewServer(http.HandlerFunc(reached))
	t.Cleanup(upA.Close)
	upB := httptest.NewServer(http.HandlerFunc(reached))
	t.Cleanup(upB.Close)
	hostB := strings.TrimPrefix(upB.URL, "http://")
	const (
		tokCI    = "token-ci-0123456789abcdef"
		tokAudit = "token-audit-0123456789abc"
		tokPlain = "token-plain-0123456789abc"
	)
	tokens := filepath.Join(t.TempDir(), "tokens")
	if err := os.WriteFile(tokens, []byte(tokCI+" ci-bot ci\n"+tokAudit+" auditor audit\n"+tokPlain+" plain\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	addr, serveIO := startServeIO(t, nil, "--auth-tokens-file", tokens, "--egress-allow", "127.0.0.1/32",
		"--egress-roles", "ci:allow-list-only,ci:allow:"+strings.TrimPrefix(upA.URL, "http://"),
		"--egress-roles", "audit:mode:report-only,audit:deny:"+hostB)
	reportAddr, reportIO := startServeIO(t, nil, "--egress-mode", "report-only")

	tests := []struct {
		name      string
		addr      string
		token     string
		url       string
		wantCode  int
		wantInErr []string
	}{
		{name: "ci reaches its allow list", addr: addr, token: tokCI, url: upA.URL},
		{name: "ci is limited to its allow list", addr: addr, token: tokCI, url: upB.URL,
			wantCode: 1, wantInErr: []string{"ERR_GATEWAY_EGRESS_DENIED", "PermissionDenied", "default-deny:loopback"}},
		{name: "no role: the base policy", addr: addr, token: tokPlain, url: upB.URL},
		{name: "report-only role", addr: addr, token: tokAudit, url: upB.URL},
		{name: "report-only base policy", addr: reportAddr, url: upB.URL},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			args := []string{"fetch", "--addr", tt.addr, tt.url}
			if tt.token != "" {
				args = append(args, "--token", tt.token)
			}
			code, out, errOut := runIn(t, nil, args...)
			if code != tt.wantCode || (code == 0 && out != "reached") {
				t.Fatalf("fetch: exit %d stdout %q stderr %q", code, out, errOut)
			}
			for _, w := range tt.wantInErr {
				if !strings.Contains(errOut, w) {
					t.Errorf("fetch stderr lacks %q: %s", w, errOut)
				}
			}
		})
	}
	// The report-only denials were logged (at warn, with rule and role)
	// before the dials went ahead.
	for _, c := range []struct {
		log  string
		want []string
	}{
		{serveIO.stderr.String(), []string{`"msg":"egress would be denied (report-only)"`, `"rule":"role:audit:deny:` + hostB + `"`, `"role":"audit"`, `"level":"WARN"`}},
		{reportIO.stderr.String(), []string{`"msg":"egress would be denied (report-only)"`, `"rule":"default-deny:loopback 127.0.0.0/8"`, `"mode":"report-only"`}},
	} {
		for _, w := range c.want {
			if !strings.Contains(c.log, w) {
				t.Errorf("serve log lacks %s:\n%s", w, c.log)
			}
		}
	}
}
