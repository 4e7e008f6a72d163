package server

import (
	"context"
	"sync"

	"google.golang.org/grpc/health"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
)

// healthService is grpc-go's health server plus one thing it lacks: at drain,
// Watch streams end once they have told their client NOT_SERVING. Without
// that, every open Watch (grpc-go's client-side health checking keeps one
// per connection) holds GracefulStop until ShutdownGrace runs out.
type healthService struct {
	*health.Server

	mu       sync.Mutex // guards the fields below
	draining bool
	watchers map[*watchStream]struct{}
}

func newHealthService() *healthService {
	return &healthService{Server: health.NewServer(), watchers: make(map[*watchStream]struct{})}
}

// noneSent marks a watcher that has not sent its first status yet.
const noneSent healthpb.HealthCheckResponse_ServingStatus = -1

// watchStream wraps one Watch call so that the Send that reports a
// non-SERVING status during drain also ends the call.
type watchStream struct {
	healthpb.Health_WatchServer
	h      *healthService
	ctx    context.Context
	cancel context.CancelFunc
	last   healthpb.HealthCheckResponse_ServingStatus // guarded by h.mu
}

func (w *watchStream) Context() context.Context { return w.ctx }

func (w *watchStream) Send(r *healthpb.HealthCheckResponse) error {
	err := w.Health_WatchServer.Send(r)
	w.h.mu.Lock()
	defer w.h.mu.Unlock()
	w.last = r.GetStatus()
	if w.h.draining && w.last != healthpb.HealthCheckResponse_SERVING {
		w.cancel() // the client has heard NOT_SERVING; let GracefulStop proceed
	}
	return err
}

// Watch implements grpc.health.v1.Health/Watch.
func (h *healthService) Watch(req *healthpb.HealthCheckRequest, stream healthpb.Health_WatchServer) error {
	ctx, cancel := context.WithCancel(stream.Context())
	defer cancel()
	w := &watchStream{Health_WatchServer: stream, h: h, ctx: ctx, cancel: cancel, last: noneSent}
	h.mu.Lock()
	h.watchers[w] = struct{}{}
	h.mu.Unlock()
	defer func() {
		h.mu.Lock()
		delete(h.watchers, w)
		h.mu.Unlock()
	}()
	return h.Server.Watch(req, w)
}

// drain turns every service NOT_SERVING for good and ends the Watch streams
// as soon as each has said so.
//
// The race it closes: health.Server.Shutdown queues NOT_SERVING to each
// watcher of a known service, but a watcher whose last sent status already
// was not SERVING gets nothing new to send (the health server drops repeats,
// and unknown services get no update at all), so no Send would ever end it.
// Those are cancelled here. A watcher that has sent nothing yet, or last sent
// SERVING, has NOT_SERVING (or its first status) still to send, and its Send
// ends it. Both decisions happen under h.mu, as does every Send's record.
func (h *healthService) drain() {
	h.mu.Lock()
	h.draining = true
	h.mu.Unlock()
	h.Server.Shutdown()

	h.mu.Lock()
	defer h.mu.Unlock()
	for w := range h.watchers {
		if w.last != noneSent && w.last != healthpb.HealthCheckResponse_SERVING {
			w.cancel()
		}
	}
}
