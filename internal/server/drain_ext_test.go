package server_test

import (
	"context"
	"io"
	"net/http"
	"os"
	"strings"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
	"google.golang.org/grpc/status"

	gatewayv1 "github.com/httpgateway/httpgateway/gen/httpgateway/v1"
	"github.com/httpgateway/httpgateway/internal/config"
	"github.com/httpgateway/httpgateway/internal/server"
)

func writeFile(path string) error { return os.WriteFile(path, []byte("x"), 0o600) }

func httpGet(t *testing.T, url string) int {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		t.Fatalf("GET %s: %v", url, err)
	}
	io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	return resp.StatusCode
}

// TestDrainNotServingBeforeListenerCloses checks the drain order: health
// watchers hear NOT_SERVING and their streams end, new connections are still
// accepted and told NOT_SERVING (and /readyz says 503), and only then does
// the listener close. The drain hook holds the server inside that window.
func TestDrainNotServingBeforeListenerCloses(t *testing.T) {
	inWindow := make(chan struct{})
	release := make(chan struct{})
	hook := func() {
		close(inWindow)
		<-release
	}
	ts := startServer(t, serverSetup{
		register: registerUnimplemented,
		// A minute of grace: if an open Watch held GracefulStop, the bounded
		// wait below would fail long before it ran out.
		config: func(c *config.Config) { c.ShutdownGrace = time.Minute; c.AdminListen = "127.0.0.1:0" },
		opts:   []server.Option{server.WithDrainHook(hook)},
	})
	admin := "http://" + ts.AdminAddr().String()
	if code := httpGet(t, admin+"/readyz"); code != http.StatusOK {
		t.Fatalf("/readyz before drain: %d", code)
	}
	ctx := testContext(t)
	watch, err := healthpb.NewHealthClient(dial(t, ts.addr)).Watch(ctx, &healthpb.HealthCheckRequest{})
	if err != nil {
		t.Fatal(err)
	}
	if r, err := watch.Recv(); err != nil || r.GetStatus() != healthpb.HealthCheckResponse_SERVING {
		t.Fatalf("first Watch status: %v, %v", r.GetStatus(), err)
	}

	ts.stop()
	<-inWindow
	if r, err := watch.Recv(); err != nil || r.GetStatus() != healthpb.HealthCheckResponse_NOT_SERVING {
		t.Fatalf("Watch during drain: %v, %v; want NOT_SERVING", r.GetStatus(), err)
	}
	if _, err := watch.Recv(); err == nil {
		t.Fatal("Watch stream still open after NOT_SERVING; it would hold GracefulStop")
	}
	// A new connection is still accepted and told NOT_SERVING.
	fresh := healthpb.NewHealthClient(dial(t, ts.addr))
	for _, svc := range []string{"", "httpgateway.v1.ClientRequestService"} {
		r, err := fresh.Check(ctx, &healthpb.HealthCheckRequest{Service: svc})
		if err != nil || r.GetStatus() != healthpb.HealthCheckResponse_NOT_SERVING {
			t.Errorf("Check(%q) during drain: %v, %v; want NOT_SERVING", svc, r.GetStatus(), err)
		}
	}
	if code := httpGet(t, admin+"/readyz"); code != http.StatusServiceUnavailable {
		t.Errorf("/readyz during drain: %d, want 503", code)
	}
	if code := httpGet(t, admin+"/healthz"); code != http.StatusOK {
		t.Errorf("/healthz during drain: %d, want 200 (alive while finishing)", code)
	}

	close(release)
	start := time.Now()
	if err := ts.wait(t); err != nil {
		t.Fatalf("Serve: %v", err)
	}
	if d := time.Since(start); d > 10*time.Second {
		t.Errorf("drain took %v: something held GracefulStop", d)
	}
	// Now the listener is closed.
	_, err = healthpb.NewHealthClient(dial(t, ts.addr)).Check(ctx, &healthpb.HealthCheckRequest{})
	if status.Code(err) != codes.Unavailable {
		t.Errorf("Check after stop: %v; want UNAVAILABLE", err)
	}
}

// blockingFetch blocks in Fetch until its call is cancelled.
type blockingFetch struct {
	gatewayv1.UnimplementedClientRequestServiceServer
	started chan struct{}
}

func (b blockingFetch) Fetch(ctx context.Context, _ *gatewayv1.FetchRequest) (*gatewayv1.FetchResponse, error) {
	close(b.started)
	<-ctx.Done()
	return nil, ctx.Err()
}

// TestShutdownGraceBoundsStop checks that a call that never finishes delays
// the stop by ShutdownGrace only, and is then cancelled.
func TestShutdownGraceBoundsStop(t *testing.T) {
	started := make(chan struct{})
	ts := startServer(t, serverSetup{
		register: func(s grpc.ServiceRegistrar) {
			gatewayv1.RegisterClientRequestServiceServer(s, blockingFetch{started: started})
		},
		config: func(c *config.Config) { c.ShutdownGrace = 200 * time.Millisecond },
	})
	client := gatewayv1.NewClientRequestServiceClient(dial(t, ts.addr))
	callErr := make(chan error, 1)
	go func() { // ends when the server cancels the call
		_, err := client.Fetch(context.Background(), &gatewayv1.FetchRequest{})
		callErr <- err
	}()
	<-started
	ts.stop()
	if err := ts.wait(t); err != nil {
		t.Fatalf("Serve: %v", err)
	}
	if err := <-callErr; status.Code(err) != codes.Unavailable && status.Code(err) != codes.Canceled {
		t.Errorf("blocked call ended with %v; want UNAVAILABLE or CANCELLED", err)
	}
	if logs := ts.logs.String(); !containsAll(logs, "shutdown grace expired") {
		t.Errorf("forced stop not logged:\n%s", logs)
	}
}

func TestAdminEndpoints(t *testing.T) {
	ts := startServer(t, serverSetup{config: func(c *config.Config) { c.AdminListen = "127.0.0.1:0" }})
	base := "http://" + ts.AdminAddr().String()
	for _, path := range []string{"/healthz", "/readyz", "/debug/pprof/", "/debug/pprof/cmdline"} {
		if code := httpGet(t, base+path); code != http.StatusOK {
			t.Errorf("GET %s: %d", path, code)
		}
	}
	// Off by default.
	if off := startServer(t, serverSetup{}); off.AdminAddr() != nil {
		t.Errorf("admin listener on by default at %v", off.AdminAddr())
	}
	http.DefaultClient.CloseIdleConnections()
}

func containsAll(s string, subs ...string) bool {
	for _, sub := range subs {
		if !strings.Contains(s, sub) {
			return false
		}
	}
	return true
}
