package main

import (
	"context"
	"log/slog"
	"net/http"
	"time"

	"github.com/httpgateway/httpgateway/internal/config"
	"github.com/httpgateway/httpgateway/internal/httpengine"
	"github.com/httpgateway/httpgateway/internal/rpc"
	"github.com/httpgateway/httpgateway/internal/telemetry"
)

// telemetryShutdownGrace bounds the flush of spans and metrics at exit.
const telemetryShutdownGrace = 5 * time.Second

// serveTelemetry is the instrumentation serve wires in.
type serveTelemetry struct {
	t       *telemetry.Telemetry
	metrics http.Handler // the admin /metrics handler; nil without admin-listen
}

// setupTelemetry builds the providers from OTEL_* (nothing exported unless
// asked for), a Prometheus handler when the admin listener is on, and the
// instrumentation over them. The returned func flushes and stops the
// exporters.
func setupTelemetry(ctx context.Context, io *stdio, cfg config.Config, log *slog.Logger, version string) (serveTelemetry, func(), error) {
	p, err := telemetry.Setup(ctx, telemetry.SetupOptions{
		LookupEnv:      io.lookupEnv,
		Prometheus:     cfg.AdminListen != "",
		ServiceVersion: version,
		Logger:         log,
	})
	if err != nil {
		return serveTelemetry{}, nil, err
	}
	shutdown := func() {
		// Not ctx: it is done by now (the drain started with it).
		sctx, cancel := context.WithTimeout(context.Background(), telemetryShutdownGrace)
		defer cancel()
		if err := p.Shutdown(sctx); err != nil {
			log.Warn("telemetry shutdown", "err", err)
		}
	}
	t, err := telemetry.New(telemetry.Options{TracerProvider: p.TracerProvider, MeterProvider: p.MeterProvider, Logger: log})
	if err != nil {
		shutdown()
		return serveTelemetry{}, nil, err
	}
	log.Info("telemetry", "traces", p.Tracing, "metrics", p.Metrics)
	return serveTelemetry{t: t, metrics: p.MetricsHandler}, shutdown, nil
}

// observeRequests adapts rpc's per-request hook to the instrumentation
// (rpc knows nothing of OpenTelemetry; telemetry nothing of rpc).
func observeRequests(t *telemetry.Telemetry) func(context.Context, *rpc.RequestInfo) httpengine.Observer {
	return func(ctx context.Context, r *rpc.RequestInfo) httpengine.Observer {
		return t.NewObserver(ctx, telemetry.Request{Options: r.Options, Agent: r.Agent, Propagate: r.Propagate})
	}
}
