package telemetry

import (
	"errors"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/metric"
)

// durationBuckets are the conventions' advised boundaries (seconds) for
// http.client.request.duration and http.client.connection.duration.
var durationBuckets = []float64{0.005, 0.01, 0.025, 0.05, 0.075, 0.1, 0.25, 0.5, 0.75, 1, 2.5, 5, 7.5, 10}

// instruments are the synchronous metrics an Observer records.
type instruments struct {
	requestDuration metric.Float64Histogram
	activeRequests  metric.Int64UpDownCounter
	connDuration    metric.Float64Histogram
	rpcDuration     metric.Float64Histogram // rpc.server.call.duration
	meter           metric.Meter
	sets            optionCache[setKey, *setOptions]           // the request metrics'
	rpcSets         optionCache[rpcKey, []metric.RecordOption] // rpc.server.call.duration's
}

func newInstruments(m metric.Meter) (*instruments, error) {
	var errs [4]error
	in := &instruments{meter: m, sets: newOptionCache(setOptionsOf), rpcSets: newOptionCache(rpcRecordOptions)}
	in.requestDuration, errs[0] = m.Float64Histogram("http.client.request.duration",
		metric.WithUnit("s"), metric.WithDescription("Duration of HTTP client requests (one per attempt: retries and redirect hops count separately)."),
		metric.WithExplicitBucketBoundaries(durationBuckets...))
	in.activeRequests, errs[1] = m.Int64UpDownCounter("http.client.active_requests",
		metric.WithUnit("{request}"), metric.WithDescription("Number of active HTTP requests."))
	in.connDuration, errs[2] = m.Float64Histogram("http.client.connection.duration",
		metric.WithUnit("s"), metric.WithDescription("The duration of the successfully established outbound HTTP connections."),
		metric.WithExplicitBucketBoundaries(durationBuckets...))
	in.rpcDuration, errs[3] = m.Float64Histogram("rpc.server.call.duration",
		metric.WithUnit("s"), metric.WithDescription("Measures the duration of inbound remote procedure calls."),
		metric.WithExplicitBucketBoundaries(rpcDurationBuckets...))
	return in, errors.Join(errs[:]...)
}

// setKey is what the attribute set of a request metric holds.
// Active-request sets have only the target; duration sets the outcome too.
type setKey struct {
	method, scheme, host string
	port                 int
	active               bool
	status               int
	proto, errType       string
}

// setOptions are one attribute set's option lists, shared and never
// modified: pass them on with "...".
type setOptions struct {
	add    []metric.AddOption
	record []metric.RecordOption
}

// setOptionsOf builds the options of a request metric's attribute set.
func setOptionsOf(k setKey) *setOptions {
	attrs := make([]attribute.KeyValue, 0, 7)
	attrs = append(attrs,
		attribute.String(keyMethod, k.method),
		attribute.String(keyServerAddress, k.host),
		attribute.Int(keyServerPort, k.port),
		attribute.String(keyScheme, k.scheme))
	attrs = appendOutcome(attrs, k.status, k.proto, k.errType)
	opt := metric.WithAttributeSet(attribute.NewSet(attrs...))
	return &setOptions{add: []metric.AddOption{opt}, record: []metric.RecordOption{opt}}
}

// appendOutcome appends what an attempt's span and duration share of its
// outcome: the status code, the protocol version and error.type, each
// when known.
func appendOutcome(attrs []attribute.KeyValue, status int, proto, errType string) []attribute.KeyValue {
	if status > 0 {
		attrs = append(attrs, attribute.Int(keyStatus, status))
	}
	if proto != "" {
		attrs = append(attrs, attribute.String(keyProtoVersion, proto))
	}
	if errType != "" {
		attrs = append(attrs, attribute.String(keyErrorType, errType))
	}
	return attrs
}
