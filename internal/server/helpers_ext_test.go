package server_test

import (
	"bytes"
	"context"
	"log/slog"
	"sync"
	"testing"
	"time"

	"github.com/httpgateway/httpgateway/internal/testutil"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"

	"github.com/httpgateway/httpgateway/internal/config"
	"github.com/httpgateway/httpgateway/internal/server"
)

// testServer is a gateway server running in-process on a loopback port.
type testServer struct {
	*server.Server
	addr string
	logs *syncBuffer
	// stop begins the drain; wait returns Serve's result.
	stop context.CancelFunc
	done chan error
}

type serverSetup struct {
	register func(grpc.ServiceRegistrar)
	config   func(*config.Config)
	opts     []server.Option
	// level is the logger's level; nil logs everything (debug).
	level slog.Leveler
}

// startServer starts a server on 127.0.0.1:0 and registers its stop with
// t.Cleanup, after a check (registered first, so run last) that every
// goroutine the test started is gone.
func startServer(t *testing.T, setup serverSetup) *testServer {
	t.Helper()
	testutil.CheckLeaks(t)

	cfg := config.Default()
	cfg.Listen = "127.0.0.1:0"
	cfg.ShutdownGrace = 30 * time.Second // long: a test that hits it has a bug
	if setup.config != nil {
		setup.config(&cfg)
	}
	logs := &syncBuffer{}
	level := setup.level
	if level == nil {
		level = slog.LevelDebug
	}
	logger := slog.New(slog.NewJSONHandler(logs, &slog.HandlerOptions{Level: level}))
	srv, err := server.New(cfg, setup.register, append([]server.Option{server.WithLogger(logger)}, setup.opts...)...)
	if err != nil {
		t.Fatal(err)
	}
	if err := srv.Listen(); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	ts := &testServer{Server: srv, addr: srv.Addr().String(), logs: logs, stop: cancel, done: make(chan error, 1)}
	go func() { ts.done <- srv.Serve(ctx) }() // ends when ctx is cancelled and the drain is over
	t.Cleanup(func() {
		cancel()
		if err := ts.wait(t); err != nil {
			t.Errorf("Serve: %v", err)
		}
	})
	return ts
}

// wait returns Serve's result, failing the test if the drain hangs.
func (ts *testServer) wait(t *testing.T) error {
	t.Helper()
	select {
	case err, ok := <-ts.done:
		if ok {
			close(ts.done)
		}
		return err
	case <-time.After(15 * time.Second):
		t.Fatal("server did not stop within 15s")
		return nil
	}
}

// dial opens a client connection closed at cleanup.
func dial(t *testing.T, addr string) *grpc.ClientConn {
	t.Helper()
	cc, err := grpc.NewClient(addr, grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cc.Close() })
	return cc
}

// syncBuffer is a bytes.Buffer safe for the server's concurrent log writes.
type syncBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}
