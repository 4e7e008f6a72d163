package telemetry

import (
	"log/slog"

	"go.opentelemetry.io/otel/metric"
	metricnoop "go.opentelemetry.io/otel/metric/noop"
	"go.opentelemetry.io/otel/propagation"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/trace"
	tracenoop "go.opentelemetry.io/otel/trace/noop"
)

// scope is the instrumentation scope of the gateway's own spans and metrics.
const scope = "github.com/httpgateway/httpgateway/internal/telemetry"

// Options configure New. Zero values take the defaults noted.
type Options struct {
	// TracerProvider makes the HTTP client spans; default a no-op one
	// (which still carries a caller's trace context to the upstream).
	TracerProvider trace.TracerProvider
	// MeterProvider makes the metrics; default a no-op one.
	MeterProvider metric.MeterProvider
	// Propagator injects the trace context into outbound requests and
	// extracts it from gRPC metadata; default W3C trace context only
	// (traceparent, tracestate). Baggage is not forwarded by default: it
	// may carry internal data an upstream should not see.
	Propagator propagation.TextMapPropagator
	// Logger receives one summary line per finished outbound request, at
	// Info; default slog.Default(). Wrap its handler with LogHandler for
	// trace and span ids.
	Logger *slog.Logger
}

// Telemetry is the instrumentation of one gateway process. Create it with
// New (given providers) or Setup (providers from the environment).
type Telemetry struct {
	tp     trace.TracerProvider
	mp     metric.MeterProvider
	prop   propagation.TextMapPropagator
	log    *slog.Logger
	tracer trace.Tracer
	inst   *instruments
	// metrics is false with a no-op meter provider: nothing is recorded,
	// so no attributes are built and no agent is watched.
	metrics bool
	// tracing is false with a no-op tracer provider: no span is started
	// (the trace context injected is the caller's, as a no-op span would
	// carry it).
	tracing bool
	// sdkSpans: the spans are the SDK's, whose SetAttributes copies what
	// it is given, so the observer may lend it a pooled buffer.
	sdkSpans     bool
	socketEvents optionCache[string, *[2][]trace.EventOption] // per agent
	rpcStarts    optionCache[string, []trace.SpanStartOption] // the SERVER spans', per method
}

// clientSpan are the start options of every HTTP client span.
var clientSpan = []trace.SpanStartOption{trace.WithSpanKind(trace.SpanKindClient)}

// New builds the instrumentation over the given providers.
func New(o Options) (*Telemetry, error) {
	if o.TracerProvider == nil {
		o.TracerProvider = tracenoop.NewTracerProvider()
	}
	if o.MeterProvider == nil {
		o.MeterProvider = metricnoop.NewMeterProvider()
	}
	if o.Propagator == nil {
		o.Propagator = propagation.TraceContext{}
	}
	if o.Logger == nil {
		o.Logger = slog.Default()
	}
	inst, err := newInstruments(o.MeterProvider.Meter(scope, metric.WithInstrumentationVersion(Version)))
	if err != nil {
		return nil, err
	}
	_, noMetrics := o.MeterProvider.(metricnoop.MeterProvider)
	_, noTraces := o.TracerProvider.(tracenoop.TracerProvider)
	_, sdkSpans := o.TracerProvider.(*sdktrace.TracerProvider)
	return &Telemetry{
		metrics:  !noMetrics,
		tracing:  !noTraces,
		sdkSpans: sdkSpans,
		tp:       o.TracerProvider,
		mp:       o.MeterProvider,
		prop:     o.Propagator,
		log:      o.Logger,
		tracer:   o.TracerProvider.Tracer(scope, trace.WithInstrumentationVersion(Version)),
		inst:     inst,

		socketEvents: newOptionCache(socketEventOptions),
		rpcStarts:    newOptionCache(rpcStartOptions),
	}, nil
}

// Version is the instrumentation version reported with the scope.
const Version = "0.1.0"

// TracerProvider returns the tracer provider in use.
func (t *Telemetry) TracerProvider() trace.TracerProvider { return t.tp }

// MeterProvider returns the meter provider in use.
func (t *Telemetry) MeterProvider() metric.MeterProvider { return t.mp }
