package server

import (
	"io"
	"log/slog"
	"net/http"
	"net/http/pprof"
	"time"
)

// newAdmin builds the admin HTTP server: liveness, readiness, pprof, and
// the routes given with WithAdminHandler (/metrics). It is off unless admin-listen is set, because
// pprof exposes internals and costs CPU when used.
func (s *Server) newAdmin() *http.Server {
	mux := http.NewServeMux()
	// Liveness: the process answers. Never fails during drain, so an
	// orchestrator does not kill a replica that is finishing its calls.
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, _ *http.Request) {
		io.WriteString(w, "ok\n")
	})
	// Readiness: 503 from the start of drain, like grpc.health.v1.
	mux.HandleFunc("GET /readyz", func(w http.ResponseWriter, _ *http.Request) {
		if !s.ready.Load() {
			http.Error(w, "not ready", http.StatusServiceUnavailable)
			return
		}
		io.WriteString(w, "ok\n")
	})
	mux.HandleFunc("/debug/pprof/", pprof.Index)
	mux.HandleFunc("/debug/pprof/cmdline", pprof.Cmdline)
	mux.HandleFunc("/debug/pprof/profile", pprof.Profile)
	mux.HandleFunc("/debug/pprof/symbol", pprof.Symbol)
	mux.HandleFunc("/debug/pprof/trace", pprof.Trace)
	for _, r := range s.opts.admin {
		mux.Handle(r.pattern, r.h)
	}
	return &http.Server{
		Handler:           mux,
		ReadHeaderTimeout: 10 * time.Second,
		ErrorLog:          slog.NewLogLogger(s.log.Handler(), slog.LevelWarn),
	}
}
