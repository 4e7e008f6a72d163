package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"

	"github.com/httpgateway/httpgateway/internal/config"
	"github.com/httpgateway/httpgateway/internal/limits"
	"github.com/httpgateway/httpgateway/internal/rpc"
	"github.com/httpgateway/httpgateway/internal/server"
	"github.com/httpgateway/httpgateway/internal/telemetry"
)

// runServe loads the configuration, serves until ctx is done, and drains.
// A bad configuration exits 2 before anything listens.
func runServe(ctx context.Context, io *stdio, args []string) int {
	fs := flag.NewFlagSet("serve", flag.ContinueOnError)
	fs.SetOutput(io.stderr)
	fs.Usage = func() {
		fmt.Fprintln(fs.Output(), "usage: gateway serve [flags]\n\n"+
			"Each flag is also GATEWAY_<NAME> in the environment and <name> in the --config file;\n"+
			"flags win over the environment, which wins over the file.\n\nflags:")
		fs.PrintDefaults()
	}
	cfg, err := config.Load(fs, args, io.lookupEnv)
	if ue := (*config.UsageError)(nil); errors.As(err, &ue) {
		if errors.Is(err, flag.ErrHelp) {
			return exitOK
		}
		return exitUsage // the flag package has printed the problem
	}
	if err != nil {
		fmt.Fprintf(io.stderr, "gateway serve: %v\n", err)
		return exitUsage
	}
	if fs.NArg() > 0 {
		fmt.Fprintf(io.stderr, "gateway serve: unexpected argument %q\n", fs.Arg(0))
		return exitUsage
	}

	log := newLogger(io.stderr, cfg)
	b := readBuildInfo()
	log.Info("starting", "version", b.version, "revision", b.revision, "go", b.goVersion, "config", cfg.Redacted())
	tel, shutdownTelemetry, err := setupTelemetry(ctx, io, cfg, log, b.version)
	if err != nil {
		log.Error("cannot set up telemetry", "err", err)
		return exitUsage
	}
	defer shutdownTelemetry()

	// The service outlives the gRPC server: Serve drains the RPCs first,
	// then Close destroys what requests and agents remain and stops the
	// idle reaper.
	var hook egressHook
	var proxyEnv map[string]string
	if cfg.ProxyFromEnv {
		if proxyEnv, err = globalProxyEnv(io.lookupEnv); err != nil {
			log.Error("invalid proxy environment for --proxy-from-env", "err", err)
			return exitUsage
		}
	}
	svc := rpc.New(rpc.Options{
		RequestIdleTimeout:    cfg.RequestIdleTimeout,
		MaxLiveRequests:       cfg.MaxLiveRequests,
		MaxFetchResponseBytes: fetchLimit(cfg.MaxSendMsgSize),
		AgentDepsFor:          hook.depsFor,
		GlobalProxyEnv:        proxyEnv,
		NewObserver:           observeRequests(tel.t),
		AgentCreated:          tel.t.WatchAgent,
		Limits: limits.New(limits.Options{
			MaxRequests:          cfg.MaxRequestsPerCaller,
			MaxHandles:           cfg.MaxHandlesPerCaller,
			Rate:                 float64(cfg.CallerRate),
			MaxHeaderBytes:       int64(cfg.MaxRequestHeaderBytes),
			MaxRequestBodyBytes:  cfg.MaxRequestBodyBytes,
			MaxResponseBodyBytes: cfg.MaxResponseBodyBytes,
			MaxTunnelDuration:    cfg.MaxTunnelDuration,
			MaxTunnelBytes:       cfg.MaxTunnelBytes,
		}),
		MaxRequestDuration: cfg.MaxRequestDuration,
	})
	defer svc.Close()
	if err := tel.t.WatchAgents(svc.Agents); err != nil {
		log.Error("cannot register pool metrics", "err", err)
		return exitFailure
	}
	sopts := []server.Option{server.WithLogger(log),
		server.WithCallInterceptors(tel.t.UnaryServerInterceptor(), tel.t.StreamServerInterceptor()),
		server.WithServerOptions(serverBufferPool())}
	if tel.metrics != nil {
		sopts = append(sopts, server.WithAdminHandler("GET /metrics", tel.metrics))
	}
	srv, err := server.New(cfg, svc.Register, sopts...)
	if err != nil {
		log.Error("cannot start", "err", err)
		return exitUsage
	}
	if err := srv.Listen(); err != nil {
		log.Error("cannot listen", "err", err)
		return exitFailure
	}
	if err := hook.install(cfg, log, srv.Addr(), srv.AdminAddr()); err != nil {
		log.Error("invalid egress policy", "err", err)
		return exitUsage
	}
	if err := srv.Serve(ctx); err != nil {
		log.Error("serve failed", "err", err)
		return exitFailure
	}
	return exitOK
}

// fetchLimit is the largest Fetch body that fits in one response message
// of maxSend bytes, leaving room for the head (a quarter, at most 1 MiB).
func fetchLimit(maxSend int) int64 {
	room := min(maxSend/4, 1<<20)
	return int64(max(maxSend-room, 1))
}

// newLogger builds the process logger: slog to w (stderr), JSON unless the
// config asks for text, with trace_id and span_id on every record logged
// with a traced context.
func newLogger(w io.Writer, cfg config.Config) *slog.Logger {
	opts := &slog.HandlerOptions{Level: cfg.LogLevel}
	if cfg.LogFormat == "text" {
		return slog.New(telemetry.LogHandler(slog.NewTextHandler(w, opts)))
	}
	return slog.New(telemetry.LogHandler(slog.NewJSONHandler(w, opts)))
}
