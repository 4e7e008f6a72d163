package server

import (
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"slices"
	"sync/atomic"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials"
	healthgrpc "google.golang.org/grpc/health/grpc_health_v1"
	"google.golang.org/grpc/keepalive"
	"google.golang.org/grpc/reflection"

	"github.com/httpgateway/httpgateway/internal/config"
)

// Server is the gateway's gRPC server and its admin HTTP listener. Create it
// with New, bind with Listen, run with Serve; it serves once.
type Server struct {
	cfg      config.Config
	opts     options
	log      *slog.Logger
	grpc     *grpc.Server
	health   *healthService
	services []string // sorted; fixed once New returns

	// ready is true from Serve's start until drain begins; /readyz reports it.
	ready atomic.Bool

	// Set by Listen, then read-only.
	lis      net.Listener
	adminLis net.Listener
	admin    *http.Server
}

// New builds the server from a validated configuration. register adds the
// gateway's services (cmd/gateway passes rpc.Register); health and
// reflection are added here.
func New(cfg config.Config, register func(grpc.ServiceRegistrar), opts ...Option) (*Server, error) {
	if err := cfg.Validate(); err != nil {
		return nil, fmt.Errorf("server: %w", err)
	}
	s := &Server{cfg: cfg, opts: options{logger: slog.Default(), tlsCheckInterval: tlsCheckInterval}}
	for _, o := range opts {
		o(&s.opts)
	}
	s.log = s.opts.logger
	authn, err := newAuthenticator(cfg, s.log)
	if err != nil {
		return nil, fmt.Errorf("server: %w", err)
	}
	// Authentication runs first in the slot, so limits and handlers after
	// it see the caller's identity.
	s.opts.unary = append([]grpc.UnaryServerInterceptor{authn.UnaryServerInterceptor()}, s.opts.unary...)
	s.opts.stream = append([]grpc.StreamServerInterceptor{authn.StreamServerInterceptor()}, s.opts.stream...)

	sopts := []grpc.ServerOption{
		grpc.MaxRecvMsgSize(cfg.MaxRecvMsgSize),
		grpc.MaxSendMsgSize(cfg.MaxSendMsgSize),
		grpc.MaxConcurrentStreams(cfg.MaxConcurrentStreams),
		// A fixed set of workers runs the handlers instead of a new
		// goroutine per call: a fresh goroutine's stack grows (and is
		// copied) on every call through the engine's deep paths, which
		// was ~7% of the CPU of a small Fetch. When every worker is busy
		// (long streams), grpc starts a goroutine as before.
		grpc.NumStreamWorkers(64),
		// Bodies are the bulk of the bytes: a 256 KiB write buffer makes one
		// write(2) per 256 KiB of DATA frames instead of per 32 KiB (the
		// copy, not the call, dominates what remains). gRPC shares write
		// buffers by default (back to a pool after each flush), so an idle
		// connection holds none.
		grpc.WriteBufferSize(256 << 10),
		// Static flow-control windows. The default dynamic windows come
		// from BDP estimation, which answers the first DATA frame after
		// each ping ack with a window update and a new PING: on small
		// calls, one extra write (and a read of the ack) per call, which
		// was a fifth of the gateway's CPU for one caller making calls one
		// at a time. 1 MiB per stream keeps four 256 KiB body chunks in
		// flight; 16 MiB per connection is what BDP estimation grows to at
		// most, so a caller that stops reading can pin no more than before.
		grpc.StaticStreamWindowSize(1 << 20),
		grpc.StaticConnWindowSize(16 << 20),
		grpc.KeepaliveEnforcementPolicy(keepalive.EnforcementPolicy{
			MinTime:             cfg.KeepaliveMinTime,
			PermitWithoutStream: cfg.KeepalivePermitWithoutStream,
		}),
		grpc.KeepaliveParams(keepalive.ServerParameters{
			MaxConnectionIdle:     cfg.MaxConnectionIdle,
			MaxConnectionAge:      cfg.MaxConnectionAge,
			MaxConnectionAgeGrace: cfg.MaxConnectionAgeGrace,
			Time:                  cfg.KeepaliveTime,
			Timeout:               cfg.KeepaliveTimeout,
		}),
	}
	if cfg.TLSCertFile != "" {
		files, err := newTLSFiles(cfg.TLSCertFile, cfg.TLSKeyFile, cfg.TLSClientCAFile, s.log, s.opts.tlsCheckInterval)
		if err != nil {
			return nil, err
		}
		sopts = append(sopts, grpc.Creds(credentials.NewTLS(files.config())))
	}
	sopts = append(sopts, chain(&s.opts)...)
	sopts = append(sopts, s.opts.serverOpts...)
	s.grpc = grpc.NewServer(sopts...)

	s.health = newHealthService()
	healthgrpc.RegisterHealthServer(s.grpc, s.health)
	reflection.Register(s.grpc)
	if register != nil {
		register(s.grpc)
	}
	for name := range s.grpc.GetServiceInfo() {
		s.services = append(s.services, name)
	}
	slices.Sort(s.services)
	return s, nil
}

// Services returns the full names of the registered gRPC services, sorted,
// health and reflection included. These are the names health reports on.
func (s *Server) Services() []string { return slices.Clone(s.services) }

// Listen binds the gRPC listener and, when configured, the admin one, and
// logs the addresses actually bound (so port 0 is usable by scripts).
func (s *Server) Listen() error {
	if s.lis != nil {
		return errors.New("server: Listen called twice")
	}
	lis, err := net.Listen("tcp", s.cfg.Listen)
	if err != nil {
		return fmt.Errorf("server: listen: %w", err)
	}
	if s.cfg.AdminListen != "" {
		adminLis, err := net.Listen("tcp", s.cfg.AdminListen)
		if err != nil {
			lis.Close()
			return fmt.Errorf("server: admin-listen: %w", err)
		}
		s.adminLis = adminLis
		s.admin = s.newAdmin()
		s.log.Info("admin listening", "addr", adminLis.Addr().String())
	}
	s.lis = lis
	s.log.Info("listening", "addr", lis.Addr().String(), "services", s.services)
	return nil
}

// Addr is the bound gRPC address; nil before Listen.
func (s *Server) Addr() net.Addr {
	if s.lis == nil {
		return nil
	}
	return s.lis.Addr()
}

// AdminAddr is the bound admin address; nil before Listen or when off.
func (s *Server) AdminAddr() net.Addr {
	if s.adminLis == nil {
		return nil
	}
	return s.adminLis.Addr()
}
