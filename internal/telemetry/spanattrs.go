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

// maxSocketEventAgents bounds socketEvents; past it the cache starts over.
const maxSocketEventAgents = 1024

// socketEvents caches the options of the socket span event per agent:
// its attributes (reused or new, the agent's name) are the same for every
// request of an agent, and the SDK copies event attributes out of the
// options, so one list serves them all.
type socketEvents struct {
	mu sync.Mutex // guards m
	m  map[string]*[2][]trace.EventOption
}

// options returns the socket event's options for agent: [0] for a new
// socket, [1] for a reused one.
func (c *socketEvents) options(agent string) *[2][]trace.EventOption {
	c.mu.Lock()
	defer c.mu.Unlock()
	if o, ok := c.m[agent]; ok {
		return o
	}
	o := new([2][]trace.EventOption)
	for i, reused := range []bool{false, true} {
		attrs := []attribute.KeyValue{attribute.Bool(keySocketReused, reused)}
		if agent != "" {
			attrs = append(attrs, attribute.String(keyAgent, agent))
		}
		o[i] = []trace.EventOption{trace.WithAttributes(attrs...)}
	}
	if c.m == nil || len(c.m) >= maxSocketEventAgents {
		c.m = make(map[string]*[2][]trace.EventOption)
	}
	c.m[agent] = o
	return o
}
