package telemetry

import (
	"errors"

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
	meter           metric.Meter
}

func newInstruments(m metric.Meter) (*instruments, error) {
	var errs [3]error
	in := &instruments{meter: m}
	in.requestDuration, errs[0] = m.Float64Histogram("http.client.request.duration",
		metric.WithUnit("s"), metric.WithDescription("Duration of HTTP client requests (one per attempt: retries and redirect hops count separately)."),
		metric.WithExplicitBucketBoundaries(durationBuckets...))
	in.activeRequests, errs[1] = m.Int64UpDownCounter("http.client.active_requests",
		metric.WithUnit("{request}"), metric.WithDescription("Number of active HTTP requests."))
	in.connDuration, errs[2] = m.Float64Histogram("http.client.connection.duration",
		metric.WithUnit("s"), metric.WithDescription("The duration of the successfully established outbound HTTP connections."),
		metric.WithExplicitBucketBoundaries(durationBuckets...))
	return in, errors.Join(errs[:]...)
}
