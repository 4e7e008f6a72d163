package telemetry

import (
	"context"
	"time"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/metric"

	"github.com/httpgateway/httpgateway/internal/agentpool"
)

// agentEventBuffer is the room of an agent watch's subscription. A burst
// larger than this between two reads drops events (the pool never
// blocks), and the connections whose created or closed event was dropped
// are missing from http.client.connection.duration.
const agentEventBuffer = 4096

// metricsOff reports a no-op meter provider: nothing to watch for.
func (t *Telemetry) metricsOff() bool { return !t.metrics }

// WatchAgents registers the pool gauges, read at each collection from the
// agents list returns (the rpc service's named agents):
//
//   - http.client.open_connections {http.connection.state=active|idle,
//     httpgateway.agent, httpgateway.pool}: sockets in use (connecting
//     included) and free sockets;
//   - httpgateway.agent.queued_requests {httpgateway.agent,
//     httpgateway.pool}: Node's agent.requests[name].length;
//   - httpgateway.agent.sockets {httpgateway.agent, httpgateway.pool,
//     state=active|free}: agent.sockets[name] and agent.freeSockets[name].
//
// The pool name (host:port:localAddress[:family][:tls...]) stands for
// server.address and server.port, which it contains.
func (t *Telemetry) WatchAgents(list func() []*agentpool.Agent) error {
	if t.metricsOff() {
		return nil
	}
	m := t.inst.meter
	open, err := m.Int64ObservableUpDownCounter("http.client.open_connections",
		metric.WithUnit("{connection}"), metric.WithDescription("Number of outbound HTTP connections that are currently active or idle on the client."))
	if err != nil {
		return err
	}
	queued, err := m.Int64ObservableGauge("httpgateway.agent.queued_requests",
		metric.WithUnit("{request}"), metric.WithDescription("Requests waiting for a socket, per agent and pool name."))
	if err != nil {
		return err
	}
	sockets, err := m.Int64ObservableGauge("httpgateway.agent.sockets",
		metric.WithUnit("{socket}"), metric.WithDescription("Sockets per agent, pool name and list (active: in use or connecting; free: idle)."))
	if err != nil {
		return err
	}
	_, err = m.RegisterCallback(func(_ context.Context, ob metric.Observer) error {
		// Callers each have their own agents, several of the same name
		// (every identity's `global`): sum them per (agent, pool), since an
		// observable instrument keeps one value per attribute set, and
		// callers' identities are not metric attributes.
		type key struct{ agent, pool string }
		type counts struct{ active, free, queued int64 }
		sum := map[key]*counts{}
		var order []key
		for _, a := range list() {
			snap := a.Snapshot()
			if snap.Destroyed {
				continue
			}
			for _, n := range snap.Names {
				k := key{snap.Agent, n.Name}
				c := sum[k]
				if c == nil {
					c = &counts{}
					sum[k] = c
					order = append(order, k)
				}
				c.active += int64(len(n.Sockets))
				c.free += int64(len(n.FreeSockets))
				c.queued += int64(n.Requests)
			}
		}
		for _, k := range order {
			c := sum[k]
			ag, pool := attribute.String(keyAgent, k.agent), attribute.String(keyPool, k.pool)
			ob.ObserveInt64(open, c.active, metric.WithAttributes(attribute.String("http.connection.state", "active"), ag, pool))
			ob.ObserveInt64(open, c.free, metric.WithAttributes(attribute.String("http.connection.state", "idle"), ag, pool))
			ob.ObserveInt64(sockets, c.active, metric.WithAttributes(attribute.String("state", "active"), ag, pool))
			ob.ObserveInt64(sockets, c.free, metric.WithAttributes(attribute.String("state", "free"), ag, pool))
			ob.ObserveInt64(queued, c.queued, metric.WithAttributes(ag, pool))
		}
		return nil
	}, open, queued, sockets)
	return err
}

// WatchAgent records http.client.connection.duration {httpgateway.agent,
// httpgateway.pool} for the sockets of a, from the pool's event feed: the
// time from a socket's creation to its close (or its hand-over by upgrade
// or CONNECT). It starts one goroutine, which ends when a is destroyed
// (the subscription closes). With metrics off it does nothing.
func (t *Telemetry) WatchAgent(a *agentpool.Agent) {
	if t.metricsOff() {
		return
	}
	sub := a.Subscribe(agentEventBuffer)
	agent := a.Name()
	go func() { // ends when sub.C closes: a destroyed
		created := map[uint64]time.Time{}
		for ev := range sub.C() {
			switch ev.Type {
			case agentpool.EventSocketCreated:
				created[ev.SocketID] = ev.Time
			case agentpool.EventSocketClosed, agentpool.EventSocketDetached:
				t0, ok := created[ev.SocketID]
				if !ok {
					continue
				}
				delete(created, ev.SocketID)
				t.inst.connDuration.Record(context.Background(), ev.Time.Sub(t0).Seconds(),
					metric.WithAttributes(attribute.String(keyAgent, agent), attribute.String(keyPool, ev.Name)))
			}
		}
	}()
}
