package telemetry

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"os"
	"strings"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	"go.opentelemetry.io/contrib/exporters/autoexport"
	"go.opentelemetry.io/otel"
	"go.opentelemetry.io/otel/attribute"
	otelprom "go.opentelemetry.io/otel/exporters/prometheus"
	"go.opentelemetry.io/otel/metric"
	sdkmetric "go.opentelemetry.io/otel/sdk/metric"
	"go.opentelemetry.io/otel/sdk/resource"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/trace"
)

// SetupOptions configure Setup.
type SetupOptions struct {
	// LookupEnv reads the environment to decide what is enabled; default
	// os.LookupEnv. The exporters themselves read the process environment
	// (autoexport) for their settings.
	LookupEnv func(string) (string, bool)
	// Prometheus adds a Prometheus reader whose handler is
	// Providers.MetricsHandler (for the admin listener's /metrics).
	Prometheus bool
	// ServiceVersion is reported as service.version.
	ServiceVersion string
	// Logger receives the SDK's export errors; default slog.Default().
	Logger *slog.Logger
}

// Providers are the SDK providers Setup built. A signal with nothing
// configured gets a no-op provider (nil fields mean no-op: New fills them).
type Providers struct {
	TracerProvider trace.TracerProvider
	MeterProvider  metric.MeterProvider
	// MetricsHandler serves the Prometheus text format; nil unless
	// SetupOptions.Prometheus.
	MetricsHandler http.Handler
	// Tracing and Metrics report which signals are exported (for the
	// start-up log line).
	Tracing, Metrics []string

	shutdown []func(context.Context) error
}

// Shutdown flushes what is buffered and stops the exporters; call it once
// at exit, with a deadline.
func (p *Providers) Shutdown(ctx context.Context) error {
	var errs []error
	for _, f := range p.shutdown {
		errs = append(errs, f(ctx))
	}
	return errors.Join(errs...)
}

// Setup builds the providers from the standard OTEL_* variables with
// autoexport (OTEL_TRACES_EXPORTER, OTEL_METRICS_EXPORTER = otlp, console
// or none; OTEL_EXPORTER_OTLP_ENDPOINT, _PROTOCOL, _HEADERS and their
// per-signal forms; OTEL_SERVICE_NAME, OTEL_RESOURCE_ATTRIBUTES).
//
// Unlike autoexport's own default (OTLP to localhost), a signal is
// exported only when something asks for it: its OTEL_<SIGNAL>_EXPORTER is
// set, or an OTEL_EXPORTER_OTLP_* variable is set that is not specific to
// another signal. With nothing set nothing is exported and Setup never
// fails for want of a collector. OTEL_SDK_DISABLED=true turns everything
// off.
func Setup(ctx context.Context, o SetupOptions) (*Providers, error) {
	if o.LookupEnv == nil {
		o.LookupEnv = os.LookupEnv
	}
	if o.Logger == nil {
		o.Logger = slog.Default()
	}
	env := otelEnv(o.LookupEnv)
	p := &Providers{}
	otel.SetErrorHandler(otel.ErrorHandlerFunc(func(err error) {
		o.Logger.Warn("opentelemetry export failed", "err", err)
	}))

	res, err := resource.New(ctx,
		resource.WithAttributes(attribute.String("service.name", "httpgateway"), attribute.String("service.version", o.ServiceVersion)),
		resource.WithFromEnv(), // OTEL_SERVICE_NAME and OTEL_RESOURCE_ATTRIBUTES win
		resource.WithTelemetrySDK(),
		resource.WithHost(),
	)
	if err != nil {
		return nil, fmt.Errorf("telemetry: resource: %w", err)
	}

	if enabled(env, "TRACES") {
		exp, err := autoexport.NewSpanExporter(ctx)
		if err != nil {
			return nil, fmt.Errorf("telemetry: traces exporter: %w", err)
		}
		if !autoexport.IsNoneSpanExporter(exp) {
			name := strings.ToLower(env["OTEL_TRACES_EXPORTER"])
			if name == "" {
				name = "otlp"
			}
			proc := sdktrace.WithBatcher(exp)
			if name == "console" {
				// Print each span as it ends: the console is for people
				// watching, who should not wait for a batch.
				proc = sdktrace.WithSyncer(exp)
			}
			tp := sdktrace.NewTracerProvider(proc, sdktrace.WithResource(res))
			p.TracerProvider = tp
			p.Tracing = []string{name}
			p.shutdown = append(p.shutdown, tp.Shutdown)
		}
	}

	var readers []sdkmetric.Option
	if enabled(env, "METRICS") {
		r, err := autoexport.NewMetricReader(ctx)
		if err != nil {
			p.Shutdown(ctx)
			return nil, fmt.Errorf("telemetry: metrics exporter: %w", err)
		}
		if !autoexport.IsNoneMetricReader(r) {
			name := strings.ToLower(env["OTEL_METRICS_EXPORTER"])
			if name == "" {
				name = "otlp"
			}
			readers = append(readers, sdkmetric.WithReader(r))
			p.Metrics = append(p.Metrics, name)
		}
	}
	if o.Prometheus && !off(env) {
		reg := prometheus.NewRegistry()
		reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
		exp, err := otelprom.New(otelprom.WithRegisterer(reg))
		if err != nil {
			p.Shutdown(ctx)
			return nil, fmt.Errorf("telemetry: prometheus: %w", err)
		}
		readers = append(readers, sdkmetric.WithReader(exp))
		p.MetricsHandler = promhttp.HandlerFor(reg, promhttp.HandlerOpts{ErrorLog: slog.NewLogLogger(o.Logger.Handler(), slog.LevelWarn)})
		p.Metrics = append(p.Metrics, "prometheus")
	}
	if len(readers) > 0 {
		mp := sdkmetric.NewMeterProvider(append(readers, sdkmetric.WithResource(res))...)
		p.MeterProvider = mp
		p.shutdown = append(p.shutdown, mp.Shutdown)
	}
	return p, nil
}

// off reports OTEL_SDK_DISABLED=true.
func off(env map[string]string) bool {
	return strings.EqualFold(strings.TrimSpace(env["OTEL_SDK_DISABLED"]), "true")
}

// otlpSettings are the OTEL_EXPORTER_OTLP_[<SIGNAL>_]<SETTING> names
// that ask for OTLP export.
var otlpSettings = []string{"ENDPOINT", "PROTOCOL", "HEADERS", "TIMEOUT", "COMPRESSION",
	"CERTIFICATE", "CLIENT_KEY", "CLIENT_CERTIFICATE", "INSECURE"}

// otelEnv reads the variables Setup decides on.
func otelEnv(lookup func(string) (string, bool)) map[string]string {
	m := map[string]string{}
	get := func(k string) {
		if v, ok := lookup(k); ok && strings.TrimSpace(v) != "" {
			m[k] = strings.TrimSpace(v)
		}
	}
	get("OTEL_SDK_DISABLED")
	for _, sig := range []string{"TRACES", "METRICS"} {
		get("OTEL_" + sig + "_EXPORTER")
	}
	for _, s := range otlpSettings {
		get("OTEL_EXPORTER_OTLP_" + s)
		for _, sig := range []string{"TRACES", "METRICS"} {
			get("OTEL_EXPORTER_OTLP_" + sig + "_" + s)
		}
	}
	return m
}

// enabled reports whether the environment asks for the signal (TRACES,
// METRICS) to be exported: OTEL_<SIGNAL>_EXPORTER, or an
// OTEL_EXPORTER_OTLP_<SETTING> or OTEL_EXPORTER_OTLP_<SIGNAL>_<SETTING>.
func enabled(env map[string]string, signal string) bool {
	if off(env) {
		return false
	}
	if env["OTEL_"+signal+"_EXPORTER"] != "" {
		return true
	}
	for _, s := range otlpSettings {
		if env["OTEL_EXPORTER_OTLP_"+s] != "" || env["OTEL_EXPORTER_OTLP_"+signal+"_"+s] != "" {
			return true
		}
	}
	return false
}
