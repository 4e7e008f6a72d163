package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"google.golang.org/grpc/encoding"
	"google.golang.org/grpc/mem"

	"github.com/httpgateway/httpgateway/internal/bufpool"
	"github.com/httpgateway/httpgateway/internal/testutil"
)

// testIO is an in-process stdio with an injected environment.
type testIO struct {
	stdout, stderr lockedBuffer
	env            map[string]string
}

func (t *testIO) stdio() *stdio {
	return &stdio{stdout: &t.stdout, stderr: &t.stderr, lookupEnv: func(k string) (string, bool) {
		v, ok := t.env[k]
		return v, ok
	}}
}

func runIn(t *testing.T, env map[string]string, args ...string) (code int, stdout, stderr string) {
	t.Helper()
	tio := &testIO{env: env}
	code = run(t.Context(), args, tio.stdio())
	return code, tio.stdout.String(), tio.stderr.String()
}

func TestVersion(t *testing.T) {
	code, out, _ := runIn(t, nil, "version")
	if code != 0 || !strings.HasPrefix(out, "gateway ") || !strings.Contains(out, runtime.Version()) {
		t.Errorf("version: exit %d, output:\n%s", code, out)
	}
}

func TestUsage(t *testing.T) {
	if code, _, errOut := runIn(t, nil, "frobnicate"); code != exitUsage || !strings.Contains(errOut, `unknown command "frobnicate"`) {
		t.Errorf("unknown command: exit %d, stderr %q", code, errOut)
	}
	if code, out, _ := runIn(t, nil, "help"); code != 0 || !strings.Contains(out, "healthcheck") {
		t.Errorf("help: exit %d, %q", code, out)
	}
	if code, _, errOut := runIn(t, nil, "serve", "-h"); code != 0 || !strings.Contains(errOut, "-egress-allow") {
		t.Errorf("serve -h: exit %d, %q", code, errOut)
	}
}

func TestServeRejectsBadConfigBeforeListening(t *testing.T) {
	tests := []struct {
		name string
		env  map[string]string
		args []string
		want string
	}{
		{"negative grace in env", map[string]string{"GATEWAY_SHUTDOWN_GRACE": "-1s"}, nil, "shutdown-grace"},
		{"bad CIDR flag, flags first", nil, []string{"--egress-allow", "10.0.0.0/99"}, "egress-allow"},
		{"stray argument", nil, []string{"serve", "--listen", "127.0.0.1:0", "extra"}, "unexpected argument"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			code, _, errOut := runIn(t, tt.env, tt.args...)
			if code != exitUsage || !strings.Contains(errOut, tt.want) {
				t.Errorf("exit %d, stderr %q; want exit %d mentioning %q", code, errOut, exitUsage, tt.want)
			}
			if strings.Contains(errOut, `"msg":"listening"`) {
				t.Error("listened despite a bad config")
			}
		})
	}
}

// TestServeRejectsBadTokenWithoutEchoingIt: a malformed inline token stops
// the start (exit 2, nothing listens) and the message names its position,
// never the token. (Token authentication itself is tested in
// internal/server; serve no longer refuses auth settings.)
func TestServeRejectsBadTokenWithoutEchoingIt(t *testing.T) {
	code, _, errOut := runIn(t, map[string]string{"GATEWAY_LISTEN": "127.0.0.1:0", "GATEWAY_AUTH_TOKENS": "short-secret"})
	if code != exitUsage || !strings.Contains(errOut, "auth-tokens") {
		t.Errorf("exit %d, stderr %q", code, errOut)
	}
	if strings.Contains(errOut, "short-secret") {
		t.Errorf("token logged: %s", errOut)
	}
	if strings.Contains(errOut, `"msg":"listening"`) {
		t.Error("listened despite a bad token")
	}
}

// TestServeAndHealthcheck runs `gateway serve` and `gateway healthcheck`
// in-process: SERVING while up (by --addr and by the environment's
// GATEWAY_LISTEN), exit 1 once stopped and on a closed port.
func TestServeAndHealthcheck(t *testing.T) {
	testutil.CheckLeaks(t)
	ctx, stop := context.WithCancel(context.Background())
	serveIO := &testIO{}
	serveIO.stderr.watch = make(chan string, 16)
	done := make(chan int, 1)
	go func() { // ends when ctx is cancelled and the drain is over
		done <- run(ctx, []string{"serve", "--listen", "127.0.0.1:0", "--shutdown-grace", "5s"}, serveIO.stdio())
	}()
	addr := waitListening(t, &serveIO.stderr, done)

	if code, out, errOut := runIn(t, nil, "healthcheck", "--addr", addr, "--timeout", "5s"); code != 0 || strings.TrimSpace(out) != "SERVING" {
		t.Errorf("healthcheck --addr %s: exit %d, stdout %q, stderr %q", addr, code, out, errOut)
	}
	if code, _, errOut := runIn(t, map[string]string{"GATEWAY_LISTEN": addr}, "healthcheck"); code != 0 {
		t.Errorf("healthcheck from GATEWAY_LISTEN=%s: exit %d, stderr %q", addr, code, errOut)
	}
	if code, _, errOut := runIn(t, nil, "healthcheck", "--addr", addr, "--service", "no.such.Service"); code != 1 || errOut == "" {
		t.Errorf("healthcheck of an unknown service: exit %d, stderr %q", code, errOut)
	}

	stop()
	select {
	case code := <-done:
		if code != 0 {
			t.Errorf("serve exit %d after drain; stderr:\n%s", code, serveIO.stderr.String())
		}
	case <-time.After(15 * time.Second):
		t.Fatal("serve did not stop")
	}
	logs := serveIO.stderr.String()
	for _, want := range []string{`"msg":"starting"`, `"config":{`, `"msg":"draining"`, `"msg":"stopped"`} {
		if !strings.Contains(logs, want) {
			t.Errorf("serve log lacks %s:\n%s", want, logs)
		}
	}
	if code, _, errOut := runIn(t, nil, "healthcheck", "--addr", addr, "--timeout", "5s"); code != 1 || !strings.Contains(errOut, addr) {
		t.Errorf("healthcheck after stop: exit %d, stderr %q", code, errOut)
	}
}

func TestHealthcheckClosedPort(t *testing.T) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	l.Close()
	if code, _, errOut := runIn(t, nil, "healthcheck", "--addr", addr, "--timeout", "5s"); code != 1 || !strings.Contains(errOut, "Unavailable") {
		t.Errorf("healthcheck of a closed port: exit %d, stderr %q", code, errOut)
	}
}

func TestDefaultHealthAddr(t *testing.T) {
	for listen, want := range map[string]string{
		":50051":         "127.0.0.1:50051",
		"0.0.0.0:8080":   "127.0.0.1:8080",
		"[::]:8080":      "[::1]:8080",
		"127.0.0.2:9000": "127.0.0.2:9000",
	} {
		got, err := defaultHealthAddr(func(k string) (string, bool) {
			if k == "GATEWAY_LISTEN" {
				return listen, true
			}
			return "", false
		})
		if err != nil || got != want {
			t.Errorf("listen %q: got %q, %v; want %q", listen, got, err, want)
		}
	}
	if got, err := defaultHealthAddr(func(string) (string, bool) { return "", false }); got != "127.0.0.1:50051" || err != nil {
		t.Errorf("default: %q, %v", got, err)
	}
}

// TestBinary builds the real binary and drives it as a container would:
// version, serve, healthcheck, SIGTERM.
func TestBinary(t *testing.T) {
	if testing.Short() {
		t.Skip("builds the binary; skipped with -short")
	}
	bin := filepath.Join(t.TempDir(), "gateway")
	build := exec.Command("go", "build", "-o", bin, ".")
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	if out, err := exec.Command(bin, "version").Output(); err != nil || !strings.Contains(string(out), "github.com/httpgateway/httpgateway") {
		t.Errorf("gateway version: %v\n%s", err, out)
	}

	serve := exec.Command(bin, "--listen", "127.0.0.1:0")
	serve.Env = append(os.Environ(), "GATEWAY_SHUTDOWN_GRACE=5s")
	stderr, err := serve.StderrPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := serve.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { serve.Process.Kill(); serve.Wait() })
	lines := bufio.NewScanner(stderr)
	var addr string
	var logs bytes.Buffer
	for addr == "" && lines.Scan() {
		logs.Write(append(lines.Bytes(), '\n'))
		addr = listeningAddr(lines.Text())
	}
	if addr == "" {
		t.Fatalf("no listening line:\n%s", logs.String())
	}
	hc := exec.Command(bin, "healthcheck", "--addr", addr)
	if out, err := hc.CombinedOutput(); err != nil {
		t.Errorf("gateway healthcheck: %v\n%s", err, out)
	}
	if err := serve.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	for lines.Scan() { // until serve closes stderr by exiting
		logs.Write(append(lines.Bytes(), '\n'))
	}
	if err := serve.Wait(); err != nil {
		t.Errorf("serve after SIGTERM: %v\n%s", err, logs.String())
	}
	if !strings.Contains(logs.String(), `"msg":"stopped"`) {
		t.Errorf("no clean stop logged:\n%s", logs.String())
	}
}

// listeningAddr returns the address of a "listening" log line, else "".
func listeningAddr(line string) string {
	var rec struct{ Msg, Addr string }
	if json.Unmarshal([]byte(line), &rec) != nil || rec.Msg != "listening" {
		return ""
	}
	return rec.Addr
}

// waitListening waits for serve's "listening" log line and returns the
// address it bound, failing if serve exits first.
func waitListening(t *testing.T, b *lockedBuffer, done <-chan int) string {
	t.Helper()
	timeout := time.After(15 * time.Second)
	for {
		select {
		case line := <-b.watch:
			if addr := listeningAddr(line); addr != "" {
				return addr
			}
		case code := <-done:
			t.Fatalf("serve exited %d before listening:\n%s", code, b.String())
		case <-timeout:
			t.Fatalf("serve did not log its address:\n%s", b.String())
		}
	}
}

// lockedBuffer collects output written concurrently; with watch set, it also
// hands each write (one log line each, as slog writes) to the test.
type lockedBuffer struct {
	mu    sync.Mutex
	buf   bytes.Buffer
	watch chan string
}

func (b *lockedBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.watch != nil {
		select {
		case b.watch <- string(p):
		default: // the test only needs the first few lines
		}
	}
	return b.buf.Write(p)
}

func (b *lockedBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

// TestBufferPoolInstalled: gRPC's default buffer pool (in-process
// clients') is the gateway's uncleared one, and so is the "proto" codec's.
// The server's is an option of serve; TestServeBodiesIntact runs bodies
// through it.
func TestBufferPoolInstalled(t *testing.T) {
	if p, ok := mem.DefaultBufferPool().(*bufpool.Pool); !ok || p != grpcBuffers {
		t.Errorf("gRPC's default buffer pool is %T, want the gateway's *bufpool.Pool", mem.DefaultBufferPool())
	}
	if c, ok := encoding.GetCodecV2("proto").(bufpool.Codec); !ok || c != bufpool.NewCodec(grpcBuffers) {
		t.Errorf("gRPC's proto codec is %T, want the gateway's bufpool.Codec", encoding.GetCodecV2("proto"))
	}
}
