package main

import (
	"net"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"testing"

	"google.golang.org/grpc"

	"github.com/httpgateway/httpgateway/internal/rpc"
	"github.com/httpgateway/httpgateway/internal/testutil"
)

// startFetchGateway runs the rpc services on loopback for the fetch client.
func startFetchGateway(t *testing.T) string {
	t.Helper()
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := grpc.NewServer()
	svc := rpc.New(rpc.Options{})
	svc.Register(srv)
	done := make(chan struct{})
	go func() { // ends when srv stops
		defer close(done)
		_ = srv.Serve(lis)
	}()
	t.Cleanup(func() {
		srv.Stop()
		<-done
		svc.Close()
	})
	return lis.Addr().String()
}

func TestFetchCommand(t *testing.T) {
	testutil.CheckLeaks(t)
	up := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("X-Seen", r.Header.Get("X-In")+" "+r.Method)
		b := make([]byte, 100)
		n, _ := r.Body.Read(b)
		_, _ = w.Write([]byte("got:" + string(b[:n])))
	}))
	t.Cleanup(up.Close)
	addr := startFetchGateway(t)

	code, out, errOut := runIn(t, nil, "fetch", "--addr", addr, "-X", "POST", "-H", "X-In: yes", "-d", "abc", up.URL+"/x")
	if code != 0 || out != "got:abc" {
		t.Fatalf("plain: exit %d, stdout %q, stderr %q", code, out, errOut)
	}
	// Flags after the URL, as with curl; -v prints the events.
	code, out, errOut = runIn(t, nil, "fetch", up.URL+"/x", "--addr", addr, "-H", "X-In: v", "-v")
	if code != 0 || out != "got:" {
		t.Fatalf("-v: exit %d, stdout %q, stderr %q", code, out, errOut)
	}
	for _, want := range []string{"< socket reused=", "< response 200 OK", "< X-Seen: v GET", "< end bytes=4", "< close (response)", "< close\n"} {
		if !strings.Contains(errOut, want) {
			t.Errorf("-v stderr lacks %q:\n%s", want, errOut)
		}
	}
	port := strconv.Itoa(closedPort(t))
	code, _, errOut = runIn(t, nil, "fetch", "--addr", addr, "http://127.0.0.1:"+port+"/")
	if code != exitFailure || !strings.Contains(errOut, "ECONNREFUSED (gRPC Unavailable)") {
		t.Fatalf("refused: exit %d, stderr %q", code, errOut)
	}
	code, _, errOut = runIn(t, nil, "fetch", "--addr", addr, "-v", "http://127.0.0.1:"+port+"/")
	if code != exitFailure || !strings.Contains(errOut, "< error ECONNREFUSED") {
		t.Fatalf("refused -v: exit %d, stderr %q", code, errOut)
	}
	if code, _, _ := runIn(t, nil, "fetch", "--addr", addr); code != exitUsage {
		t.Fatalf("no URL: exit %d", code)
	}
}

func closedPort(t *testing.T) int {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	port := ln.Addr().(*net.TCPAddr).Port
	_ = ln.Close()
	return port
}
