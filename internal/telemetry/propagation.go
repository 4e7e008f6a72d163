package telemetry

import (
	"context"
	"strings"

	"google.golang.org/grpc/health/grpc_health_v1"
	"google.golang.org/grpc/metadata"

	"github.com/httpgateway/httpgateway/internal/httpengine"
)

// headerCarrier is a propagation.TextMapCarrier over an engine header
// list (the first attempt's Options.Headers): Set replaces every line of
// the name (any casing) with one. It never writes into the list's backing
// array, which belongs to the caller.
type headerCarrier struct{ h *[]httpengine.Header }

func (c headerCarrier) Get(key string) string {
	for _, h := range *c.h {
		if strings.EqualFold(h.Name, key) {
			return h.Value
		}
	}
	return ""
}

func (c headerCarrier) Set(key, value string) {
	old := *c.h
	hs := make([]httpengine.Header, 0, len(old)+1)
	for _, h := range old {
		if !strings.EqualFold(h.Name, key) {
			hs = append(hs, h)
		}
	}
	*c.h = append(hs, httpengine.Header{Name: key, Value: value})
}

func (c headerCarrier) Keys() []string {
	out := make([]string, len(*c.h))
	for i, h := range *c.h {
		out[i] = h.Name
	}
	return out
}

// outgoingCarrier is a propagation.TextMapCarrier over the headers of an
// attempt after the first (httpengine.AttemptObserver.OnAttempt): Set is
// setHeader, which replaces the header where it stands.
type outgoingCarrier struct{ h *httpengine.OutgoingHeaders }

func (c outgoingCarrier) Get(key string) string {
	if v, _, ok := c.h.Get(key); ok && len(v) > 0 {
		return v[0]
	}
	return ""
}

// Set ignores a value the engine refuses; propagators produce valid ones.
func (c outgoingCarrier) Set(key, value string) { _ = c.h.Set(key, value) }

func (c outgoingCarrier) Keys() []string { return c.h.Names() }

// incomingCarrier reads the incoming gRPC metadata of ctx key by key,
// without metadata.FromIncomingContext's copy of all of it.
type incomingCarrier struct{ ctx context.Context }

func (c incomingCarrier) Get(key string) string {
	if v := metadata.ValueFromIncomingContext(c.ctx, key); len(v) > 0 {
		return v[0]
	}
	return ""
}

func (incomingCarrier) Set(string, string) {}

func (c incomingCarrier) Keys() []string {
	md, _ := metadata.FromIncomingContext(c.ctx)
	out := make([]string, 0, len(md))
	for k := range md {
		out = append(out, k)
	}
	return out
}

// healthMethodPrefix starts the full method names of the health service.
var healthMethodPrefix = "/" + grpc_health_v1.Health_ServiceDesc.ServiceName + "/"
