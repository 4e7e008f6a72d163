package telemetry

import (
	"strconv"
	"strings"
	"time"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/propagation"
	"go.opentelemetry.io/otel/trace"

	"github.com/httpgateway/httpgateway/internal/agentpool"
	"github.com/httpgateway/httpgateway/internal/httpengine"
	"github.com/httpgateway/httpgateway/internal/nodeerr"
)

// startAttempt opens an attempt: a CLIENT span (child of the RPC's span)
// starting now. Its attributes are set when it ends, in one call: none
// is known to a sampler at the start either way (the SDK samples before
// SetAttributes), and one call grows the span's attribute list once.
func (o *observer) startAttempt() {
	o.open = true
	o.status, o.proto, o.peerAddr, o.peerPort = 0, "", "", 0
	o.pool, o.socketID, o.sent, o.received = "", 0, 0, 0
	if o.t.metrics {
		o.attemptStart = time.Now()
	}
	if !o.t.tracing {
		return
	}
	name := o.tg.method
	if name == "_OTHER" {
		name = "HTTP"
	}
	_, o.span = o.t.tracer.Start(o.parent, name, clientSpan...)
	o.last, o.rec = o.span, o.span.IsRecording()
}

// endAttempt ends the current attempt with errType ("" for none; a
// 4xx/5xx status is one) and records its duration.
func (o *observer) endAttempt(errType, desc string) {
	if !o.open {
		return
	}
	o.open = false
	if errType == "" && o.status >= 400 {
		errType = strconv.Itoa(o.status)
	}
	if o.rec {
		o.rec = false
		tg := o.target()
		buf := o.t.attrBuffer()
		attrs := append((*buf)[:0],
			attribute.String(keyMethod, tg.method),
			attribute.String(keyURL, tg.url),
			attribute.String(keyServerAddress, tg.host),
			attribute.Int(keyServerPort, tg.port),
			attribute.String(keyScheme, tg.scheme),
		)
		if tg.original != "" {
			attrs = append(attrs, attribute.String(keyMethodOriginal, tg.original))
		}
		if o.resends > 0 {
			attrs = append(attrs, attribute.Int(keyResendCount, o.resends))
		}
		if o.agent != "" {
			attrs = append(attrs, attribute.String(keyAgent, o.agent))
		}
		attrs = appendOutcome(attrs, o.status, o.proto, errType)
		if o.peerAddr != "" {
			attrs = append(attrs, attribute.String(keyPeerAddress, o.peerAddr))
			if o.peerPort > 0 {
				attrs = append(attrs, attribute.Int(keyPeerPort, o.peerPort))
			}
		}
		if o.cancelled {
			attrs = append(attrs, attribute.Bool(keyCancelled, true))
		}
		if o.pool != "" {
			attrs = append(attrs, attribute.String(keyPool, o.pool), attribute.Int64(keySocketID, int64(o.socketID)))
		}
		if o.sent > 0 {
			attrs = append(attrs, attribute.Int64(keyRequestBodySize, int64(o.sent)))
		}
		if o.received > 0 {
			attrs = append(attrs, attribute.Int64(keyResponseBodySize, int64(o.received)))
		}
		o.span.SetAttributes(attrs...)
		*buf = attrs
		o.t.putAttrBuffer(buf)
		// The conventions: Error for a failure and for a 4xx/5xx (with no
		// description: the status code says it); nothing when the caller
		// cancelled.
		if errType != "" && !o.cancelled {
			o.span.SetStatus(codes.Error, desc)
		}
	}
	if o.span != nil {
		o.span.End()
	}
	o.span = nil
	if !o.t.metrics {
		return
	}
	tg := o.target()
	so := o.t.inst.sets.get(setKey{method: tg.method, scheme: tg.scheme, host: tg.host, port: tg.port,
		status: o.status, proto: o.proto, errType: errType})
	o.t.inst.requestDuration.Record(o.parent, time.Since(o.attemptStart).Seconds(), so.record...)
}

// inject puts the current attempt's trace context into c: its span's, or
// with tracing off the caller's (what a no-op span would carry).
func (o *observer) inject(c propagation.TextMapCarrier) {
	ctx := o.parent
	if o.span != nil {
		ctx = trace.ContextWithSpan(ctx, o.span)
	}
	o.t.prop.Inject(ctx, c)
}

// OnAttempt implements httpengine.AttemptObserver: the attempt before
// ends (a redirect's already has), and the new one gets its own span and,
// when propagating, its own traceparent in h.
func (o *observer) OnAttempt(kind httpengine.AttemptKind, h *httpengine.OutgoingHeaders) {
	if o.done {
		return
	}
	switch kind {
	case httpengine.AttemptRetry:
		o.endAttempt(nodeerr.ECONNRESET, "reused socket closed before the response; retried")
		o.resends++
	case httpengine.AttemptLogin:
		o.endAttempt("", "") // error.type from the 401/407 of the login event
		o.resends++
	}
	o.startAttempt()
	if o.propagate {
		o.inject(outgoingCarrier{h})
	}
}

// OnConnected implements httpengine.AttemptObserver: a new socket's peer,
// and span events at the moments its dial's phases ended, each with how
// long it took: socket.lookup (DNS; none for an IP literal),
// socket.connect (TCP or unix), socket.secureConnect (TLS), as Node's
// net.Socket names them.
func (o *observer) OnConnected(info *agentpool.SocketInfo) {
	if o.done || !o.open {
		return
	}
	if info.RemoteAddress != "" {
		o.peerAddr, o.peerPort = info.RemoteAddress, info.RemotePort
	}
	d := info.Dial
	if !o.rec || d == nil {
		return
	}
	if !d.DNSDone.IsZero() {
		o.span.AddEvent("socket.lookup", trace.WithTimestamp(d.DNSDone),
			trace.WithAttributes(phaseDuration(d.DNSStart, d.DNSDone)))
	}
	if !d.ConnectDone.IsZero() {
		attrs := make([]attribute.KeyValue, 0, 3)
		attrs = append(attrs, phaseDuration(d.ConnectStart, d.ConnectDone))
		if o.peerAddr != "" {
			attrs = append(attrs, attribute.String(keyPeerAddress, o.peerAddr))
			if o.peerPort > 0 {
				attrs = append(attrs, attribute.Int(keyPeerPort, o.peerPort))
			}
		}
		o.span.AddEvent("socket.connect", trace.WithTimestamp(d.ConnectDone), trace.WithAttributes(attrs...))
	}
	if !d.TLSDone.IsZero() {
		attrs := make([]attribute.KeyValue, 0, 4)
		attrs = append(attrs, phaseDuration(d.TLSStart, d.TLSDone))
		ti := info.TLS
		if ti == nil {
			ti = info.ProxyTLS // http through an https proxy: the proxy's
		}
		if ti != nil {
			attrs = append(attrs, attribute.String(keyTLSVersion, strings.TrimPrefix(ti.Version, "TLSv")),
				attribute.String(keyTLSCipher, ti.CipherSuite), attribute.Bool(keyTLSResumed, ti.Resumed))
		}
		o.span.AddEvent("socket.secureConnect", trace.WithTimestamp(d.TLSDone), trace.WithAttributes(attrs...))
	}
}

// phaseDuration is the httpgateway.duration_ms attribute of a dial phase.
func phaseDuration(start, end time.Time) attribute.KeyValue {
	return attribute.Float64(keyDuration, float64(end.Sub(start).Microseconds())/1000)
}
