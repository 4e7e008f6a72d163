package telemetry

import (
	"log/slog"
	"time"

	"go.opentelemetry.io/otel/trace"
)

// logSummary writes the one line per finished outbound request. It never
// carries header values; the URL is redacted. Nothing is built unless the
// line's level is enabled.
func (o *observer) logSummary() {
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
		slog.Float64("duration_ms", float64(time.Since(o.start).Microseconds())/1000),
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
