package main

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/httpgateway/httpgateway/internal/testutil"
)

// startServe runs `gateway serve` in-process on a loopback port with the
// given extra flags and returns its address; it stops at cleanup.
func startServe(t *testing.T, extra ...string) string {
	t.Helper()
	addr, _ := startServeIO(t, nil, extra...)
	return addr
}

// startServeIO is startServe with an environment; it also returns the
// serve's streams (its log is stderr).
func startServeIO(t *testing.T, env map[string]string, extra ...string) (string, *testIO) {
	t.Helper()
	ctx, stop := context.WithCancel(context.Background())
	serveIO := &testIO{env: env}
	serveIO.stderr.watch = make(chan string, 16)
	done := make(chan int, 1)
	args := append([]string{"serve", "--listen", "127.0.0.1:0", "--shutdown-grace", "5s"}, extra...)
	go func() { // ends when ctx is cancelled and the drain is over
		done <- run(ctx, args, serveIO.stdio())
	}()
	addr := waitListening(t, &serveIO.stderr, done)
	t.Cleanup(func() {
		stop()
		select {
		case <-done:
		case <-time.After(15 * time.Second):
			t.Error("serve did not stop")
		}
	})
	return addr, serveIO
}

// echoUpstream answers with the method, a header and the body it got.
func echoUpstream(t *testing.T) *httptest.Server {
	up := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		_, _ = io.WriteString(w, r.Method+" "+r.Header.Get("X-Client")+":"+string(b))
	}))
	t.Cleanup(up.Close)
	return up
}

// TestGrpcurlClient drives a Fetch and an Events stream with grpcurl, the
// pinned go tool: a client no one here wrote, through reflection only.
func TestGrpcurlClient(t *testing.T) {
	if testing.Short() {
		t.Skip("builds grpcurl")
	}
	testutil.CheckLeaks(t)
	up := echoUpstream(t)
	addr := startServe(t, "--egress-allow", "127.0.0.1/32")
	grpcurl := func(args ...string) string {
		t.Helper()
		cmd := exec.Command("go", append([]string{"tool", "grpcurl", "-plaintext"}, args...)...)
		out, err := cmd.CombinedOutput()
		if err != nil {
			t.Fatalf("grpcurl %v: %v\n%s", args, err, out)
		}
		return string(out)
	}

	out := grpcurl("-d", `{"url":"`+up.URL+`/x","method":"POST","body":"aGk="}`, addr, "httpgateway.v1.ClientRequestService/Fetch")
	var fetch struct {
		StatusCode int    `json:"statusCode"`
		Body       []byte `json:"body"`
	}
	if err := json.Unmarshal([]byte(out), &fetch); err != nil || fetch.StatusCode != 200 || string(fetch.Body) != "POST :hi" {
		t.Fatalf("Fetch via grpcurl: %v\n%s", err, out)
	}

	out = grpcurl("-d", `{"options":{"url":"`+up.URL+`/y"}}`, addr, "httpgateway.v1.ClientRequestService/Request")
	id := regexp.MustCompile(`"requestId": "([^"]+)"`).FindStringSubmatch(out)
	if id == nil {
		t.Fatalf("no request id in %s", out)
	}
	grpcurl("-d", `{"requestId":"`+id[1]+`"}`, addr, "httpgateway.v1.ClientRequestService/End")
	out = grpcurl("-d", `{"requestId":"`+id[1]+`"}`, addr, "httpgateway.v1.ClientRequestService/Events")
	var kinds []string
	for _, k := range []string{`"socket"`, `"finish"`, `"response"`, `"data"`, `"end"`, `"close"`} {
		if i := strings.Index(out, k+": {"); i >= 0 {
			kinds = append(kinds, k)
		}
	}
	if len(kinds) != 6 || strings.Index(out, `"socket"`) > strings.Index(out, `"response"`) {
		t.Fatalf("Events via grpcurl lacks events or order (found %v):\n%s", kinds, out)
	}
}

// TestPythonClient generates Python stubs at test time with Debian's
// python3-grpc-tools and does a Fetch and an Exchange with python3-grpcio.
func TestPythonClient(t *testing.T) {
	if testing.Short() {
		t.Skip("runs python")
	}
	py := "/usr/bin/python3"
	if err := exec.Command(py, "-c", "import grpc, grpc_tools").Run(); err != nil {
		t.Skip("python3-grpcio / python3-grpc-tools not installed (.ci/install-deps installs them)")
	}
	testutil.CheckLeaks(t)
	stubs := t.TempDir()
	src := filepath.Join(stubs, "src", "httpgateway", "v1")
	if err := os.MkdirAll(src, 0o755); err != nil {
		t.Fatal(err)
	}
	protos, _ := filepath.Glob("../../proto/httpgateway/v1/*.proto")
	var files []string
	for _, p := range protos {
		b, err := os.ReadFile(p)
		if err != nil {
			t.Fatal(err)
		}
		// Debian's protoc predates proto3 `optional`; without the label a
		// field has the same wire format and only loses presence tracking,
		// which this client does not use.
		b = regexp.MustCompile(`(?m)^(\s*)optional `).ReplaceAll(b, []byte("$1"))
		dst := filepath.Join(src, filepath.Base(p))
		if err := os.WriteFile(dst, b, 0o644); err != nil {
			t.Fatal(err)
		}
		files = append(files, filepath.Join("src", "httpgateway", "v1", filepath.Base(p)))
	}
	gen := exec.Command(py, append([]string{"-m", "grpc_tools.protoc", "-I", "src", "--python_out=.", "--grpc_python_out=."}, files...)...)
	gen.Dir = stubs
	if out, err := gen.CombinedOutput(); err != nil {
		t.Fatalf("generating stubs: %v\n%s", err, out)
	}

	up := echoUpstream(t)
	addr := startServe(t, "--egress-allow", "127.0.0.1/32")
	out, err := exec.Command(py, "testdata/pyclient.py", stubs, addr, up.URL+"/p").Output()
	if err != nil {
		var ee *exec.ExitError
		if errors.As(err, &ee) {
			t.Fatalf("pyclient: %v\n%s", err, ee.Stderr)
		}
		t.Fatal(err)
	}
	var got struct {
		FetchStatus    int      `json:"fetch_status"`
		FetchBody      string   `json:"fetch_body"`
		ExchangeEvents []string `json:"exchange_events"`
		ExchangeBody   string   `json:"exchange_body"`
	}
	if err := json.Unmarshal(out, &got); err != nil {
		t.Fatalf("%v: %s", err, out)
	}
	if got.FetchStatus != 200 || got.FetchBody != "POST python:from python" {
		t.Fatalf("fetch: %+v", got)
	}
	if got.ExchangeBody != "POST :streamed in two" {
		t.Fatalf("exchange body %q", got.ExchangeBody)
	}
	if strings.Join(got.ExchangeEvents, " ") != "socket finish response data end close close" {
		t.Fatalf("exchange events %v", got.ExchangeEvents)
	}
}
