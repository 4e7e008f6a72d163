package telemetry

import (
	"context"
	"strconv"
	"strings"
	"time"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/trace"

	"github.com/httpgateway/httpgateway/internal/httpengine"
	"github.com/httpgateway/httpgateway/internal/httpengine/wire"
	"github.com/httpgateway/httpgateway/internal/nodeerr"
)

// Attribute keys: the HTTP client semantic conventions, then the gateway's.
const (
	keyMethod           = "http.request.method"
	keyMethodOriginal   = "http.request.method_original"
	keyURL              = "url.full"
	keyScheme           = "url.scheme"
	keyServerAddress    = "server.address"
	keyServerPort       = "server.port"
	keyStatus           = "http.response.status_code"
	keyErrorType        = "error.type"
	keyPeerAddress      = "network.peer.address"
	keyPeerPort         = "network.peer.port"
	keyProtoVersion     = "network.protocol.version"
	keyResendCount      = "http.request.resend_count"
	keyRequestBodySize  = "http.request.body.size"
	keyResponseBodySize = "http.response.body.size"
	keyTLSVersion       = "tls.protocol.version"
	keyTLSCipher        = "tls.cipher"
	keyTLSResumed       = "tls.resumed"
	keyAgent            = "httpgateway.agent"
	keyPool             = "httpgateway.pool"
	keySocketID         = "httpgateway.socket.id"
	keySocketReused     = "httpgateway.socket.reused"
	keyCancelled        = "httpgateway.cancelled"
	keyLocation         = "httpgateway.redirect.location"
	keyErrorCode        = "httpgateway.error.code"
	keyDuration         = "httpgateway.duration_ms"
)

// Request is what NewObserver needs of a request about to start.
type Request struct {
	// Options are the request's engine options. With Propagate, the
	// trace context headers are appended to (or replace those in)
	// Options.Headers.
	Options *httpengine.Options
	// Agent is the agent's name, "" for a one-time agent.
	Agent string
	// Propagate allows injecting traceparent/tracestate, into the first
	// attempt's headers here and into each later attempt's (redirect
	// hops, retries, login resends) as it starts.
	Propagate bool
}

// NewObserver returns the observer of one request: its spans are children
// of the span in ctx (the RPC's SERVER span), the first starting now. With
// r.Propagate the trace context of that first span goes into the request's
// headers, so the upstream continues the caller's trace. The observer is
// an httpengine.AttemptObserver: each later attempt gets a span of its
// own, and its own traceparent.
func (t *Telemetry) NewObserver(ctx context.Context, r Request) httpengine.Observer {
	o := &observer{t: t, parent: ctx, agent: r.Agent, propagate: r.Propagate,
		src: sourceOf(r.Options), haveSrc: true, start: time.Now()}
	setMethod(&o.tg, r.Options.Method)
	if t.metrics {
		tg := o.target()
		o.activeOpts = t.inst.sets.get(setKey{method: tg.method, scheme: tg.scheme, host: tg.host, port: tg.port, active: true})
		t.inst.activeRequests.Add(ctx, 1, o.activeOpts.add...)
	}
	if t.tracing {
		o.socketEvent = t.socketEvents.get(r.Agent)
	}
	o.startAttempt()
	if r.Propagate {
		o.inject(headerCarrier{&r.Options.Headers})
	}
	return o
}

// observer turns one request's events into spans, metrics and a summary
// log line. The engine calls it under the request's lock, one call at a
// time, so the fields need no lock of their own.
//
// Cost: with tracing off (a no-op tracer provider) it starts no span; with
// a span that does not record (no-op, or sampled out) it builds no
// attribute and no event; with metrics off it builds no attribute set;
// the log line is built only when its level is enabled. The target (URL
// parsing, redaction) is built only when one of those needs it.
type observer struct {
	t         *Telemetry
	parent    context.Context
	agent     string
	propagate bool
	// tg is the current attempt's target; while haveSrc, only its method
	// fields are set and src holds what builds the rest (see target).
	tg         target
	src        targetSource
	haveSrc    bool
	activeOpts *setOptions // http.client.active_requests's
	start      time.Time
	// socketEvent are the options of the socket event, new and reused.
	socketEvent *[2][]trace.EventOption

	// The current attempt, open from startAttempt to endAttempt (closed
	// between a redirect and its next hop). span is nil with tracing off;
	// rec says it is open and recording: worth building attributes and
	// events for.
	open         bool
	span         trace.Span
	rec          bool
	last         trace.Span // the last span started, for the log line
	attemptStart time.Time  // for http.client.request.duration
	resends      int
	status       int
	proto        string
	peerAddr     string
	peerPort     int

	reused             bool
	pool               string // the current attempt's socket: pool name and id
	socketID           uint64
	sent, received     uint64
	redirects          int
	errCode            string
	errMsg             string
	cancelled          bool
	reqClosed, resSeen bool
	resClosed, done    bool
}

// target returns the current attempt's target, building it from src on
// first use.
func (o *observer) target() *target {
	if o.haveSrc {
		o.tg = targetOf(&o.src)
		o.haveSrc = false
	}
	return &o.tg
}

// addEvent adds an event without attributes to the current attempt, now.
func (o *observer) addEvent(name string) {
	if o.rec {
		o.span.AddEvent(name)
	}
}

// httpVersion is network.protocol.version of a response head.
func httpVersion(h *wire.ResponseHead) string {
	switch {
	case h == nil:
		return ""
	case h.Major == 1 && h.Minor == 1:
		return "1.1"
	case h.Major == 1 && h.Minor == 0:
		return "1.0"
	}
	return strconv.Itoa(h.Major) + "." + strconv.Itoa(h.Minor)
}

// OnEvent implements httpengine.Observer. Span events get no timestamp
// option: OnEvent runs synchronously as the event is emitted, so the
// SDK's "now" is the moment (and Event.Time is not stamped yet).
func (o *observer) OnEvent(ev httpengine.Event) {
	if o.done {
		return
	}
	switch ev.Kind {
	case httpengine.EventSocket:
		o.reused = ev.Reused
		if s := ev.Socket; s != nil {
			o.pool, o.socketID = s.Name, s.ID
			if s.RemoteAddress != "" {
				// A pooled socket knows its peer now; a new one is still
				// connecting (OnConnected tells).
				o.peerAddr, o.peerPort = s.RemoteAddress, s.RemotePort
			}
		}
		if o.rec {
			// Reused or new, and the agent: the same few attribute lists
			// for every request of an agent, built once (see socketEventOptions).
			// The pool name and socket id are the span's.
			i := 0
			if ev.Reused {
				i = 1
			}
			o.span.AddEvent("socket", o.socketEvent[i]...)
		}
	case httpengine.EventFinish:
		o.sent = ev.Bytes // the span's http.request.body.size
		o.addEvent("finish")
	case httpengine.EventContinue:
		o.addEvent("continue")
	case httpengine.EventInformation:
		if o.rec && ev.Head != nil {
			o.span.AddEvent("information", trace.WithAttributes(attribute.Int(keyStatus, ev.Head.StatusCode)))
		}
	case httpengine.EventResponse, httpengine.EventUpgrade, httpengine.EventConnect:
		if ev.Kind == httpengine.EventResponse {
			o.resSeen = true
		}
		if ev.Head != nil {
			o.status, o.proto = ev.Head.StatusCode, httpVersion(ev.Head)
		}
		o.addEvent(ev.Kind.String()) // the status is the span's
	case httpengine.EventEnd:
		// No span event: the span's end is the moment. The span's
		// http.response.body.size.
		o.received = ev.Bytes
	case httpengine.EventRedirect:
		o.onRedirect(ev.Redirect)
	case httpengine.EventLogin:
		if ev.Login != nil {
			// The attempt was answered 407 (a proxy) or 401; OnAttempt ends
			// it when Login resends the request.
			o.status = 401
			if ev.Login.IsProxy {
				o.status = 407
			}
			o.addEvent("login")
		}
	case httpengine.EventTimeout:
		o.addEvent("timeout")
	case httpengine.EventAbort:
		o.cancelled = true
		o.addEvent("abort")
	case httpengine.EventAborted:
		o.addEvent("aborted")
	case httpengine.EventError:
		if ev.Err == nil || o.errCode != "" {
			break // the first error is the cause; later ones follow from it
		}
		o.errCode, o.errMsg = ev.Err.Code, safeMessage(ev.Err.Message)
		if ev.Err.Code == nodeerr.ABORT_ERR {
			o.cancelled = true // the caller's stream ended: an AbortSignal
		}
		if o.peerAddr == "" && ev.Err.Address != "" {
			o.peerAddr, o.peerPort = ev.Err.Address, ev.Err.Port
		}
		if o.rec {
			o.span.AddEvent("error", trace.WithAttributes(attribute.String(keyErrorCode, ev.Err.Code)))
		}
	case httpengine.EventClose:
		if ev.Target == httpengine.TargetResponse {
			o.resClosed = true
		} else {
			o.reqClosed = true
		}
		if o.reqClosed && (!o.resSeen || o.resClosed) {
			o.finish()
		}
	}
}

// onRedirect ends the attempt that was answered with a redirect; the next
// hop's attempt starts at OnAttempt.
func (o *observer) onRedirect(h *httpengine.RedirectInfo) {
	if h == nil {
		return
	}
	o.status, o.proto = h.StatusCode, httpVersion(h.Head)
	var next target
	built := false
	if o.rec {
		next, built = targetOfRedirect(h.RedirectURL, h.Method), true
		o.span.AddEvent("redirect", trace.WithAttributes(attribute.Int(keyStatus, h.StatusCode),
			attribute.String(keyLocation, next.url), attribute.String(keyMethod, next.method)))
	}
	o.endAttempt("", "")
	o.redirects++
	o.resends++
	if built {
		o.tg, o.haveSrc = next, false
		return
	}
	o.tg = target{}
	setMethod(&o.tg, h.Method)
	o.src, o.haveSrc = targetSource{URL: h.RedirectURL, Method: h.Method, Redirect: true}, true
}

// safeMessage keeps an error message for the span status unless it may
// hold a URL with credentials (redirect errors quote the Location).
func safeMessage(m string) string {
	if strings.ContainsAny(m, "?@") {
		return ""
	}
	return m
}

// finish ends the request: its last attempt, the active count, the log.
func (o *observer) finish() {
	o.done = true
	errType, desc := "", ""
	if o.errCode != "" && !o.cancelled {
		errType, desc = o.errCode, o.errCode
		if o.errMsg != "" {
			desc += ": " + o.errMsg
		}
	}
	o.endAttempt(errType, desc)
	if o.t.metrics {
		o.t.inst.activeRequests.Add(o.parent, -1, o.activeOpts.add...)
	}
	o.logSummary()
	// The engine keeps its observer as long as the request's handle
	// lingers (seconds, for late Events readers): let go of the spans and
	// the RPC's context, which would otherwise stay on the heap with it.
	o.parent, o.last = context.Background(), nil
}
