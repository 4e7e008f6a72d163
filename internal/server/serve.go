package server

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"time"

	"google.golang.org/grpc"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
)

// adminShutdownTimeout bounds how long admin requests (a pprof profile can
// run 30s) may delay the end of a drain; after it they are cut.
const adminShutdownTimeout = 2 * time.Second

// Serve serves until ctx is done, then drains and returns nil; or returns
// the error that stopped a listener. It calls Listen first if the caller did
// not. Every goroutine it starts has ended when it returns.
func (s *Server) Serve(ctx context.Context) error {
	if s.lis == nil {
		if err := s.Listen(); err != nil {
			return err
		}
	}
	for _, name := range append([]string{""}, s.services...) {
		s.health.SetServingStatus(name, healthpb.HealthCheckResponse_SERVING)
	}
	s.ready.Store(true)

	// Each serving goroutine ends when its server is stopped by drain (or
	// fails on its own); errc has room for both so neither blocks.
	errc := make(chan error, 2)
	running := 1
	go func() {
		// ErrServerStopped: drain won the race to a Serve not yet running.
		if err := s.grpc.Serve(s.lis); err != nil && !errors.Is(err, grpc.ErrServerStopped) {
			errc <- fmt.Errorf("server: grpc: %w", err)
			return
		}
		errc <- nil
	}()
	if s.admin != nil {
		running++
		go func() {
			if err := s.admin.Serve(s.adminLis); !errors.Is(err, http.ErrServerClosed) {
				errc <- fmt.Errorf("server: admin: %w", err)
				return
			}
			errc <- nil
		}()
	}

	var serveErr error
	select {
	case <-ctx.Done():
		s.log.Info("draining", "reason", context.Cause(ctx).Error())
	case serveErr = <-errc:
		running--
		s.log.Error("listener failed; stopping", "err", serveErr)
	}
	s.drain()
	for ; running > 0; running-- {
		if err := <-errc; err != nil && serveErr == nil {
			serveErr = err
		}
	}
	s.log.Info("stopped")
	return serveErr
}

// drain stops the server in the order load balancers need: first health
// says NOT_SERVING (and /readyz 503) while the listener still accepts, then
// after DrainDelay the listener closes and running calls get ShutdownGrace
// to finish, then whatever is left is cancelled.
func (s *Server) drain() {
	s.ready.Store(false)
	s.health.drain()
	if s.opts.drainHook != nil {
		s.opts.drainHook()
	}
	if d := s.cfg.DrainDelay; d > 0 {
		t := time.NewTimer(d)
		<-t.C
	}

	done := make(chan struct{})
	go func() { // ends when GracefulStop returns, which Stop below forces
		s.grpc.GracefulStop()
		close(done)
	}()
	grace := time.NewTimer(s.cfg.ShutdownGrace)
	defer grace.Stop()
	select {
	case <-done:
	case <-grace.C:
		s.log.Warn("shutdown grace expired; cancelling running calls", "shutdown_grace", s.cfg.ShutdownGrace.String())
		s.grpc.Stop()
		<-done
	}

	if s.admin != nil {
		ctx, cancel := context.WithTimeout(context.Background(), adminShutdownTimeout)
		defer cancel()
		if err := s.admin.Shutdown(ctx); err != nil {
			s.admin.Close()
		}
	}
}
