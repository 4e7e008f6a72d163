package telemetry

import (
	"sync"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/trace"
)

// attrBuffers are the attribute lists an observer builds a span's
// attributes in, lent to the SDK's SetAttributes, which copies them.
var attrBuffers = sync.Pool{New: func() any {
	b := make([]attribute.KeyValue, 0, 24)
	return &b
}}

// attrBuffer returns an empty list for SetAttributes: a pooled one when
// the spans are the SDK's, else a new one (another implementation may keep
// what it is given).
func (t *Telemetry) attrBuffer() *[]attribute.KeyValue {
	if t.sdkSpans {
		b := attrBuffers.Get().(*[]attribute.KeyValue)
		*b = (*b)[:0]
		return b
	}
	b := make([]attribute.KeyValue, 0, 24)
	return &b
}

// putAttrBuffer gives back a list from attrBuffer once SetAttributes
// returned.
func (t *Telemetry) putAttrBuffer(b *[]attribute.KeyValue) {
	if t.sdkSpans && cap(*b) <= 64 {
		clear((*b)[:cap(*b)]) // drop the strings it points to
		attrBuffers.Put(b)
	}
}

// socketEventOptions are the options of the socket span event for an
// agent: [0] for a new socket, [1] for a reused one. Its attributes
// (reused or new, the agent's name) are the same for every request of an
// agent: the Telemetry caches them (socketEvents).
func socketEventOptions(agent string) *[2][]trace.EventOption {
	o := new([2][]trace.EventOption)
	for i, reused := range []bool{false, true} {
		attrs := []attribute.KeyValue{attribute.Bool(keySocketReused, reused)}
		if agent != "" {
			attrs = append(attrs, attribute.String(keyAgent, agent))
		}
		o[i] = []trace.EventOption{trace.WithAttributes(attrs...)}
	}
	return o
}
