package server

import "time"

// WithDrainHook runs f after health turned NOT_SERVING and before the
// listener closes, so tests can look at the server inside that window
// without racing a timer.
func WithDrainHook(f func()) Option {
	return func(o *options) { o.drainHook = f }
}

// WithTLSCheckInterval sets how often the TLS files are looked at for
// changes (default 1s); tests use a negative value: on every handshake.
func WithTLSCheckInterval(d time.Duration) Option {
	return func(o *options) { o.tlsCheckInterval = d }
}
