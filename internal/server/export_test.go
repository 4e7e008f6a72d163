package server

// WithDrainHook runs f after health turned NOT_SERVING and before the
// listener closes, so tests can look at the server inside that window
// without racing a timer.
func WithDrainHook(f func()) Option {
	return func(o *options) { o.drainHook = f }
}
