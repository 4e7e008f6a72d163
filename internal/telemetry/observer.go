package telemetry

import (
	"context"
	"log/slog"
	"net/url"
	"strconv"
	"strings"
	"time"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/metric"
	"go.opentelemetry.io/otel/trace"

	"github.com/httpgateway/httpgateway/internal/httpengine"
	"github.com/httpgateway/httpgateway/internal/httpengine/wire"
	"github.com/httpgateway/httpgateway/internal/nodeerr"
)

// Attribute keys: the HTTP client semantic conventions, then the gateway's.
const (
	keyMethod         = "http.request.method"
	keyMethodOriginal = "http.request.method_original"
	keyURL            = "url.full"
	keyScheme         = "url.scheme"
	keyServerAddress  = "server.address"
	keyServerPort     = "server.port"
	keyStatus         = "http.response.status_code"
	keyErrorType      = "error.type"
	keyPeerAddress    = "network.peer.address"
	keyPeerPort       = "network.peer.port"
	keyProtoVersion   = "network.protocol.version"
	keyResendCount    = "http.request.resend_count"
	keyAgent          = "httpgateway.agent"
	keyPool           = "httpgateway.pool"
	keySocketID       = "httpgateway.socket.id"
	keySocketReused   = "httpgateway.socket.reused"
	keyCancelled      = "httpgateway.cancelled"
	keyBytes          = "httpgateway.bytes"
	keyLocation       = "httpgateway.redirect.location"
	keyErrorCode      = "httpgateway.error.code"
)

// Request is what NewObserver needs of a request about to start.
type Request struct {
	// Options are the request's engine options. With Propagate, the
	// trace context headers are appended to (or replace those in)
	// Options.Headers.
	Options *httpengine.Options
	// Agent is the agent's name, "" for a one-time agent.
	Agent string
	// Propagate allows injecting traceparent/tracestate.
	Propagate bool
}

// NewObserver returns the observer of one request: its spans are children
// of the span in ctx (the RPC's SERVER span), the first starting now. With
// r.Propagate the trace context of that first span goes into the request's
// headers, so the upstream continues the caller's trace.
func (t *Telemetry) NewObserver(ctx context.Context, r Request) httpengine.Observer {
	o := &observer{t: t, parent: ctx, agent: r.Agent, src: sourceOf(r.Options)}
	setMethod(&o.tg, r.Options.Method)
	now := time.Now()
	o.start = now
	if t.metrics {
		tg := o.target()
		o.activeAttrs = metric.WithAttributeSet(attribute.NewSet(
			attribute.String(keyMethod, tg.method), attribute.String(keyServerAddress, tg.host),
			attribute.Int(keyServerPort, tg.port), attribute.String(keyScheme, tg.scheme)))
		t.inst.activeRequests.Add(ctx, 1, o.activeAttrs)
	}
	o.startAttempt(now)
	if r.Propagate {
		t.prop.Inject(trace.ContextWithSpan(ctx, o.span), headerCarrier{&r.Options.Headers})
	}
	return o
}

// target is where an attempt goes, as the conventions name it.
type target struct {
	method   string // normalised: a known method or _OTHER
	original string // the method as given, when it is not a known one
	scheme   string // "http" or "https"
	host     string
	port     int
	url      string // url.full, redacted
}

// knownMethods are the methods the conventions name; others are _OTHER.
var knownMethods = map[string]bool{"CONNECT": true, "DELETE": true, "GET": true, "HEAD": true,
	"OPTIONS": true, "PATCH": true, "POST": true, "PUT": true, "TRACE": true, "QUERY": true}

func setMethod(t *target, m string) {
	if m == "" {
		m = "GET"
	}
	up := strings.ToUpper(m)
	if knownMethods[up] {
		t.method = up
		return
	}
	t.method, t.original = "_OTHER", m
}

// targetSource is what targetOf reads of the request options, copied at
// NewObserver (which must not keep the options): the target is built only
// when something records it (a recording span, metrics, or the summary
// log line), so a request with nothing of that on parses no URL.
type targetSource struct {
	URL, Method, Protocol, Host, Hostname, Path string
	Port, DefaultPort                           int
}

func sourceOf(o *httpengine.Options) *targetSource {
	return &targetSource{URL: o.URL, Method: o.Method, Protocol: o.Protocol, Host: o.Host, Hostname: o.Hostname,
		Path: o.Path, Port: o.Port, DefaultPort: o.DefaultPort}
}

// target returns the current attempt's target, building the first one
// from src on first use.
func (o *observer) target() *target {
	if o.src != nil {
		o.tg = targetOf(o.src)
		o.src = nil
	}
	return &o.tg
}

// targetOf merges the request options the way the engine does (the
// separate fields win over the URL) into the target of the first attempt.
func targetOf(o *targetSource) target {
	var t target
	setMethod(&t, o.Method)
	u, err := url.Parse(o.URL)
	if o.URL == "" || err != nil {
		u = &url.URL{}
	}
	t.scheme = strings.ToLower(u.Scheme)
	if o.Protocol != "" {
		t.scheme = strings.ToLower(strings.TrimSuffix(o.Protocol, ":"))
	}
	if t.scheme == "" {
		t.scheme = "http"
	}
	t.host = u.Hostname()
	if o.Host != "" {
		t.host = o.Host
	}
	if o.Hostname != "" {
		t.host = o.Hostname
	}
	t.host = strings.TrimSuffix(strings.TrimPrefix(t.host, "["), "]")
	if t.host == "" {
		t.host = "localhost"
	}
	def := o.DefaultPort
	if def == 0 {
		def = 80
		if t.scheme == "https" {
			def = 443
		}
	}
	t.port, _ = strconv.Atoi(u.Port())
	if o.Port != 0 {
		t.port = o.Port
	}
	if t.port == 0 {
		t.port = def
	}
	path := u.EscapedPath()
	if u.RawQuery != "" {
		path += "?" + u.RawQuery
	}
	if o.Path != "" {
		path = o.Path
	}
	if path == "" {
		path = "/"
	}
	hp := t.host
	if strings.Contains(hp, ":") {
		hp = "[" + hp + "]"
	}
	full := &url.URL{Scheme: t.scheme, Host: hp + ":" + strconv.Itoa(t.port), User: u.User}
	if t.port == def {
		full.Host = hp
	}
	p, q, _ := strings.Cut(path, "?")
	full.RawPath = p
	full.Path, _ = url.PathUnescape(p)
	full.RawQuery = q
	t.url = redactParsed(full)
	return t
}

// targetOfRedirect is the target of the hop a redirect starts.
func targetOfRedirect(h *httpengine.RedirectInfo) target {
	var t target
	setMethod(&t, h.Method)
	u, err := url.Parse(h.RedirectURL)
	if err != nil {
		u = &url.URL{}
	}
	t.scheme = strings.ToLower(u.Scheme)
	t.host = u.Hostname()
	t.port, _ = strconv.Atoi(u.Port())
	if t.port == 0 {
		t.port = 80
		if t.scheme == "https" {
			t.port = 443
		}
	}
	t.url = redactParsed(u)
	return t
}

// observer turns one request's events into spans, metrics and a summary
// log line. The engine calls OnEvent under the request's lock, one event
// at a time, so the fields need no lock of their own.
type observer struct {
	t      *Telemetry
	parent context.Context
	agent  string
	// tg is the current attempt's target; until src is nil (see target)
	// only its method fields are set.
	tg          target
	src         *targetSource
	activeAttrs metric.MeasurementOption
	start       time.Time

	// The current attempt; span is nil between a redirect and the next
	// hop's socket.
	span         trace.Span
	last         trace.Span // the last span started, for the log line
	rec          bool       // span is recording: worth building attributes
	attemptStart time.Time
	resends      int
	sawSocket    bool
	status       int
	proto        string
	peerAddr     string
	peerPort     int

	reused             bool
	sent, received     uint64
	redirects          int
	errCode            string
	errMsg             string
	cancelled          bool
	reqClosed, resSeen bool
	resClosed, done    bool
}

func (o *observer) startAttempt(ts time.Time) {
	name := o.tg.method
	if name == "_OTHER" {
		name = "HTTP"
	}
	o.attemptStart, o.sawSocket = ts, false
	o.status, o.proto, o.peerAddr, o.peerPort = 0, "", "", 0
	_, o.span = o.t.tracer.Start(o.parent, name, trace.WithSpanKind(trace.SpanKindClient), trace.WithTimestamp(ts))
	o.last, o.rec = o.span, o.span.IsRecording()
	if !o.rec {
		return // a no-op or unsampled span: nothing to describe
	}
	tg := o.target()
	attrs := make([]attribute.KeyValue, 0, 8)
	attrs = append(attrs,
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
	o.span.SetAttributes(attrs...)
}

// endAttempt ends the current attempt with errType ("" for none) and
// records its duration.
func (o *observer) endAttempt(ts time.Time, errType, desc string) {
	if o.span == nil {
		return
	}
	if errType == "" && o.status >= 400 {
		errType = strconv.Itoa(o.status)
	}
	if o.rec {
		attrs := make([]attribute.KeyValue, 0, 6)
		if o.status > 0 {
			attrs = append(attrs, attribute.Int(keyStatus, o.status))
		}
		if o.proto != "" {
			attrs = append(attrs, attribute.String(keyProtoVersion, o.proto))
		}
		if o.peerAddr != "" {
			attrs = append(attrs, attribute.String(keyPeerAddress, o.peerAddr))
			if o.peerPort > 0 {
				attrs = append(attrs, attribute.Int(keyPeerPort, o.peerPort))
			}
		}
		if errType != "" {
			attrs = append(attrs, attribute.String(keyErrorType, errType))
		}
		if o.cancelled {
			attrs = append(attrs, attribute.Bool(keyCancelled, true))
		}
		o.span.SetAttributes(attrs...)
		// The conventions: Error for a failure and for a 4xx/5xx (with no
		// description: the status code says it); nothing when the caller
		// cancelled.
		if errType != "" && !o.cancelled {
			o.span.SetStatus(codes.Error, desc)
		}
	}
	o.span.End(trace.WithTimestamp(ts))
	o.span = nil
	if !o.t.metrics {
		return
	}

	tg := o.target()
	mattrs := make([]attribute.KeyValue, 0, 7)
	mattrs = append(mattrs,
		attribute.String(keyMethod, tg.method),
		attribute.String(keyServerAddress, tg.host),
		attribute.Int(keyServerPort, tg.port),
		attribute.String(keyScheme, tg.scheme))
	if o.status > 0 {
		mattrs = append(mattrs, attribute.Int(keyStatus, o.status))
	}
	if o.proto != "" {
		mattrs = append(mattrs, attribute.String(keyProtoVersion, o.proto))
	}
	if errType != "" {
		mattrs = append(mattrs, attribute.String(keyErrorType, errType))
	}
	o.t.inst.requestDuration.Record(o.parent, ts.Sub(o.attemptStart).Seconds(), metric.WithAttributes(mattrs...))
}

// event adds a span event to the current attempt.
func (o *observer) event(name string, ts time.Time, attrs ...attribute.KeyValue) {
	if o.span != nil && o.rec {
		o.span.AddEvent(name, trace.WithTimestamp(ts), trace.WithAttributes(attrs...))
	}
}

func httpVersion(h *wire.ResponseHead) string {
	if h == nil {
		return ""
	}
	return strconv.Itoa(h.Major) + "." + strconv.Itoa(h.Minor)
}

// OnEvent implements httpengine.Observer.
func (o *observer) OnEvent(ev httpengine.Event) {
	if o.done {
		return
	}
	if ev.Time.IsZero() {
		// The engine shows the observer the event before its log stamps
		// the time (only Seq is set), so the moment is now: OnEvent runs
		// synchronously as the event is emitted.
		ev.Time = time.Now()
	}
	switch ev.Kind {
	case httpengine.EventSocket:
		switch {
		case o.span == nil: // the next hop after a redirect
			o.startAttempt(ev.Time)
		case o.sawSocket:
			// A second socket with no redirect between: the engine retried
			// on a fresh socket after the reused one failed (ECONNRESET
			// before any response byte; see httpengine's retry).
			o.endAttempt(ev.Time, nodeerr.ECONNRESET, "reused socket closed before the response; retried")
			o.resends++
			o.startAttempt(ev.Time)
		}
		o.sawSocket, o.reused = true, ev.Reused
		if s := ev.Socket; s != nil && s.RemoteAddress != "" {
			o.peerAddr, o.peerPort = s.RemoteAddress, s.RemotePort
		}
		if o.rec && o.span != nil {
			attrs := []attribute.KeyValue{attribute.Bool(keySocketReused, ev.Reused)}
			if o.agent != "" {
				attrs = append(attrs, attribute.String(keyAgent, o.agent))
			}
			if s := ev.Socket; s != nil {
				attrs = append(attrs, attribute.String(keyPool, s.Name), attribute.Int64(keySocketID, int64(s.ID)))
			}
			o.event("socket", ev.Time, attrs...)
		}
	case httpengine.EventFinish:
		o.sent = ev.Bytes
		o.event("finish", ev.Time, attribute.Int64(keyBytes, int64(ev.Bytes)))
	case httpengine.EventContinue:
		o.event("continue", ev.Time)
	case httpengine.EventInformation:
		if ev.Head != nil {
			o.event("information", ev.Time, attribute.Int(keyStatus, ev.Head.StatusCode))
		}
	case httpengine.EventResponse, httpengine.EventUpgrade, httpengine.EventConnect:
		if ev.Kind == httpengine.EventResponse {
			o.resSeen = true
		}
		if ev.Head != nil {
			o.status, o.proto = ev.Head.StatusCode, httpVersion(ev.Head)
		}
		o.event(ev.Kind.String(), ev.Time, attribute.Int(keyStatus, o.status))
	case httpengine.EventEnd:
		o.received = ev.Bytes // no span event: the span's end is the moment
	case httpengine.EventRedirect:
		h := ev.Redirect
		if h == nil {
			return
		}
		o.status, o.proto = h.StatusCode, httpVersion(h.Head)
		next := targetOfRedirect(h)
		o.event("redirect", ev.Time, attribute.Int(keyStatus, h.StatusCode),
			attribute.String(keyLocation, next.url), attribute.String(keyMethod, next.method))
		o.endAttempt(ev.Time, "", "")
		o.redirects++
		o.resends++
		o.tg, o.src = next, nil
	case httpengine.EventTimeout:
		o.event("timeout", ev.Time)
	case httpengine.EventAbort:
		o.cancelled = true
		o.event("abort", ev.Time)
	case httpengine.EventAborted:
		o.event("aborted", ev.Time)
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
		o.event("error", ev.Time, attribute.String(keyErrorCode, ev.Err.Code))
	case httpengine.EventClose:
		if ev.Target == httpengine.TargetResponse {
			o.resClosed = true
		} else {
			o.reqClosed = true
		}
		if o.reqClosed && (!o.resSeen || o.resClosed) {
			o.finish(ev.Time)
		}
	}
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
func (o *observer) finish(ts time.Time) {
	o.done = true
	errType, desc := "", ""
	if o.errCode != "" && !o.cancelled {
		errType, desc = o.errCode, o.errCode
		if o.errMsg != "" {
			desc += ": " + o.errMsg
		}
	}
	o.endAttempt(ts, errType, desc)
	if o.t.metrics {
		o.t.inst.activeRequests.Add(o.parent, -1, o.activeAttrs)
	}
	o.logSummary(ts)
}

// logSummary writes the one line per finished outbound request. It never
// carries header values; the URL is redacted.
func (o *observer) logSummary(ts time.Time) {
	lvl := slog.LevelInfo
	if o.errCode != "" && !o.cancelled {
		lvl = slog.LevelWarn
	}
	l := o.t.log
	if !l.Enabled(o.parent, lvl) { // before building anything: the level is usually off
		return
	}
	ctx := o.parent
	if o.last != nil {
		ctx = trace.ContextWithSpan(ctx, o.last)
	}
	tg := o.target()
	method := tg.method
	if tg.original != "" {
		method = tg.original
	}
	attrs := make([]slog.Attr, 0, 12)
	attrs = append(attrs,
		slog.String(keyMethod, method),
		slog.String(keyURL, tg.url),
		slog.Int(keyStatus, o.status),
		slog.Float64("duration_ms", float64(ts.Sub(o.start).Microseconds())/1000),
		slog.Uint64("bytes_sent", o.sent),
		slog.Uint64("bytes_received", o.received),
		slog.Bool("reused_socket", o.reused),
		slog.String("agent", o.agent),
	)
	if o.redirects > 0 {
		attrs = append(attrs, slog.Int("redirects", o.redirects))
	}
	if o.errCode != "" {
		attrs = append(attrs, slog.String("error.code", o.errCode))
	}
	if o.cancelled {
		attrs = append(attrs, slog.Bool("cancelled", true))
	}
	l.LogAttrs(ctx, lvl, "outbound request", attrs...)
}

// headerCarrier is a propagation.TextMapCarrier over an engine header
// list: Set replaces every line of the name (any casing) with one.
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
	hs := (*c.h)[:0:0]
	for _, h := range *c.h {
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
