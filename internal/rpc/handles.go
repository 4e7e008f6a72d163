package rpc

import (
	"crypto/rand"
	"encoding/base64"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/httpgateway/httpgateway/internal/httpengine"
	"github.com/httpgateway/httpgateway/internal/limits"
)

// handle is one live ClientRequest addressed by its request_id.
type handle struct {
	id        string
	req       *httpengine.ClientRequest
	agentName string // "" for a one-time agent
	join      bool   // the request's joinDuplicateHeaders, for the merged views
	created   time.Time
	// owner is the identity (auth.Identity.Name) that created the request;
	// only it may see or drive the handle. "" is the anonymous identity.
	owner string
	// role is the owner's role when it created the request (lookupOwned).
	role string
	// release gives back the owner's per-identity limit slots (nil: none).
	release     func()
	releaseOnce sync.Once // release runs at most once: when finished, or when freed

	// lastActive is the time (unix nanos) of the last RPC that touched the
	// handle; users counts the streams (Events, Write, Exchange) attached to
	// it. A handle with users is never idle.
	lastActive atomic.Int64
	users      atomic.Int32
	// tunnelTaken is set once Tunnel took the handed-over socket.
	tunnelTaken atomic.Bool
	// consumed is set when the Exchange stream that drove the request
	// ended: its events need no delivery anymore.
	consumed atomic.Bool
	// finishedAt is when the handle was first seen finished (unix nanos),
	// 0 before.
	finishedAt atomic.Int64

	// The per-request bounds (limits.go). headerMu serialises header edits
	// with their check and guards headers (the caller's header bytes; nil
	// without a header bound); bodyBytes counts the body bytes the caller
	// wrote; response records that a data event passed the response body
	// bound; overLimit is the bound that ended the request, nil if none.
	headerMu  sync.Mutex
	headers   *headerMeter
	bodyBytes atomic.Int64
	response  responseMeter
	overLimit atomic.Pointer[limits.Exceeded]
}

// touch records activity on h.
func (h *handle) touch() { h.lastActive.Store(time.Now().UnixNano()) }

// attach marks a stream driving or watching h; detach undoes it.
func (h *handle) attach() { h.users.Add(1); h.touch() }
func (h *handle) detach() { h.touch(); h.users.Add(-1) }

// tunnelPending reports whether the request handed a socket over by
// 'upgrade' or 'connect' that no Tunnel took yet: the handle must stay
// until Tunnel takes it (or the idle time passes).
func (h *handle) tunnelPending() bool {
	if h.tunnelTaken.Load() {
		return false
	}
	p := h.req.Properties()
	if p.Response == nil {
		return false
	}
	code := p.Response.StatusCode
	return code == 101 || (p.Method == "CONNECT" && code >= 200 && code < 300)
}

// finished reports whether h's request is over and nothing of it is
// wanted anymore: 'close' emitted, every event delivered, no socket
// waiting for Tunnel.
func (h *handle) finished() bool {
	// The request emitted its last event once its log is finished. (Done
	// closes right after, in the same critical section of the engine: a
	// stream that just read the log's end may run before it does, and must
	// see the request finished.)
	if !h.req.Events().Finished() {
		return false
	}
	return (h.consumed.Load() || h.req.Events().AllDelivered()) && !h.tunnelPending()
}

// handles is the registry of live requests, with the live-request cap and
// the idle reaper.
//
// Lifecycle of a handle: created by Request or Exchange (counted against
// max). It is finished once its request closed, its events were all
// delivered (or the Exchange that drove it ended) and no socket waits for
// Tunnel; a finished handle lingers for `linger` after it finished, so
// that a Get or a late call right after 'close' still answers, then the
// reaper frees it (removes it and Disposes its request). At the cap,
// finished handles are freed at once to make room. A handle that is not
// finished is reaped when no stream is attached and no RPC touched it for
// `idle`: its request is destroyed with ERR_GATEWAY_IDLE_TIMEOUT if it still
// runs, then freed. Fetch takes a slot (reserve/unreserve) without a handle.
//
// The reaper goroutine is started by newHandles and ends when close is
// called (close waits for it).
type handles struct {
	max    int
	idle   time.Duration
	linger time.Duration

	mu     sync.Mutex // guards the fields below
	m      map[string]*handle
	slots  int // live requests: len(m) plus Fetch calls in flight
	closed bool

	stop chan struct{} // closed by close: the reaper returns
	done chan struct{} // closed by the reaper when it returned
}

func newHandles(max int, idle, linger time.Duration) *handles {
	hs := &handles{max: max, idle: idle, linger: linger, m: map[string]*handle{}, stop: make(chan struct{}), done: make(chan struct{})}
	go hs.reaper() // ends when close closes stop
	return hs
}

// newID returns an opaque, unguessable request id: 128 random bits.
func newID() string {
	var b [16]byte
	_, _ = rand.Read(b[:]) // crypto/rand.Read never fails (Go 1.24+)
	return "r_" + base64.RawURLEncoding.EncodeToString(b[:])
}

// reserve takes a live-request slot, or fails with RESOURCE_EXHAUSTED (or
// UNAVAILABLE once closed).
func (hs *handles) reserve() error {
	for evicted := false; ; evicted = true {
		hs.mu.Lock()
		switch {
		case hs.closed:
			hs.mu.Unlock()
			return gwError(codeShuttingDown, "the gateway is shutting down")
		case hs.slots < hs.max:
			hs.slots++
			hs.mu.Unlock()
			return nil
		case evicted:
			hs.mu.Unlock()
			return gwError(codeTooManyRequests, "too many live requests (max "+strconv.Itoa(hs.max)+")")
		}
		all := hs.snapshotLocked()
		hs.mu.Unlock()
		// At the cap, lingering finished handles make room.
		for _, h := range all {
			if h.finished() {
				hs.remove(h)
			}
		}
	}
}

func (hs *handles) snapshotLocked() []*handle {
	all := make([]*handle, 0, len(hs.m))
	for _, h := range hs.m {
		all = append(all, h)
	}
	return all
}

// unreserve gives back a slot taken by reserve.
func (hs *handles) unreserve() {
	hs.mu.Lock()
	hs.slots--
	hs.mu.Unlock()
}

// add registers req under a new id in a slot taken by reserve. After
// close, the request is disposed and an error returned.
// c is the creating caller; release, if not nil, is called once the
// handle is gone (or at once if add fails).
func (hs *handles) add(req *httpengine.ClientRequest, agentName string, join bool, c caller, release func()) (*handle, error) {
	h := &handle{id: newID(), req: req, agentName: agentName, join: join, created: time.Now(), owner: c.owner, role: c.role, release: release}
	h.touch()
	hs.mu.Lock()
	if hs.closed {
		hs.slots--
		hs.mu.Unlock()
		req.Dispose()
		h.releaseSlots()
		return nil, gwError(codeShuttingDown, "the gateway is shutting down")
	}
	hs.m[h.id] = h
	hs.mu.Unlock()
	return h, nil
}

// releaseSlots gives back the owner's limit slots, once.
func (h *handle) releaseSlots() {
	if h.release != nil {
		h.releaseOnce.Do(h.release)
	}
}

// getOwned is get for caller c: another identity's handle answers
// exactly as an unknown id does, so ids of other callers cannot be probed
// (no existence oracle). A handle its identity created under another role
// than c's current one is destroyed (see lookupOwned).
func (hs *handles) getOwned(id string, c caller) (*handle, error) {
	h, err := hs.lookupOwned(id, c)
	if err == nil {
		h.touch()
	}
	return h, err
}

// lookupOwned is lookup for caller c (see getOwned). When c's identity has
// changed role since it created the request (the tokens file was edited),
// the request is destroyed before the handle is returned: it must not
// dial again (a deferred redirect followed, a login answered) under the
// old role's egress policy. The call then acts on a destroyed request, as
// after DestroyAgent.
func (hs *handles) lookupOwned(id string, c caller) (*handle, error) {
	h, err := hs.lookup(id)
	if err != nil {
		return nil, err
	}
	if h.owner != c.owner {
		return nil, notFound(id)
	}
	if h.role != c.role {
		destroyRoleChanged(h)
	}
	return h, nil
}

func destroyRoleChanged(h *handle) {
	h.req.Destroy(gwError(codeRoleChanged, "the caller's role changed since it created the request"))
}

// stopIfRoleChanged destroys h's request when its owner's latest known
// role (the one its latest call had: agents.roleOf) is not the one it
// created the request under. An Exchange stream's caller is fixed when the
// stream opens, so its ops that dial again (FollowRedirect, Login) ask
// this instead of lookupOwned.
func (s *Service) stopIfRoleChanged(h *handle) {
	if role, ok := s.agents.roleOf(h.owner); ok && role != h.role {
		destroyRoleChanged(h)
	}
}

// get returns the live handle named id and records the activity: the
// caller drives the request.
func (hs *handles) get(id string) (*handle, error) {
	h, err := hs.lookup(id)
	if err == nil {
		h.touch()
	}
	return h, err
}

// lookup returns the live handle named id without recording activity:
// reading a request's state (Get, GetHeader, ...) neither drives nor
// watches it, so it does not keep it from the idle reaper.
func (hs *handles) lookup(id string) (*handle, error) {
	hs.mu.Lock()
	h, ok := hs.m[id]
	hs.mu.Unlock()
	if !ok {
		return nil, notFound(id)
	}
	return h, nil
}

// remove unregisters h and disposes its request. It is idempotent.
func (hs *handles) remove(h *handle) {
	hs.mu.Lock()
	cur, ok := hs.m[h.id]
	if ok && cur == h {
		delete(hs.m, h.id)
		hs.slots--
	}
	hs.mu.Unlock()
	if ok && cur == h {
		h.req.Dispose() // not under mu: Dispose calls into the pool
		h.releaseSlots()
	}
}

// noteFinished records that a stream saw the end of h's request: the
// linger starts now if h is finished. consumed says the stream was the
// request's driver (Exchange), so undelivered events do not matter.
func (hs *handles) noteFinished(h *handle, consumed bool) {
	if consumed {
		h.consumed.Store(true)
	}
	if h.finished() {
		h.finishedAt.CompareAndSwap(0, time.Now().UnixNano())
		// A finished handle only lingers for Get: it holds no socket and
		// no body, so it gives its owner's limit slots back now rather
		// than when the reaper frees it.
		h.releaseSlots()
	}
}

// count returns the number of registered handles (for tests and metrics).
func (hs *handles) count() int {
	hs.mu.Lock()
	defer hs.mu.Unlock()
	return len(hs.m)
}

// reapInterval is how often the reaper looks: a quarter of the shorter of
// idle and linger, within [5ms, 1s], so a handle outlives them by little.
func (hs *handles) reapInterval() time.Duration {
	return min(max(min(hs.idle, hs.linger)/4, 5*time.Millisecond), time.Second)
}

// reaper frees finished handles and reaps idle ones until close.
func (hs *handles) reaper() {
	defer close(hs.done)
	t := time.NewTicker(hs.reapInterval())
	defer t.Stop()
	for {
		select {
		case <-hs.stop:
			return
		case now := <-t.C:
			hs.sweep(now)
		}
	}
}

// sweep runs one reaper pass.
func (hs *handles) sweep(now time.Time) {
	hs.mu.Lock()
	all := hs.snapshotLocked()
	hs.mu.Unlock()
	nowNs := now.UnixNano()
	for _, h := range all {
		if h.finished() {
			h.finishedAt.CompareAndSwap(0, nowNs)
			if h.users.Load() == 0 && time.Duration(nowNs-h.finishedAt.Load()) >= hs.linger {
				hs.remove(h)
			}
			continue
		}
		if h.users.Load() > 0 || time.Duration(nowNs-h.lastActive.Load()) < hs.idle {
			continue
		}
		// Nobody drove or watched the request for the idle time.
		h.req.Destroy(gwError(codeIdleTimeout, "request destroyed: no RPC activity for "+hs.idle.String()))
		hs.remove(h)
	}
}

// close stops the reaper, waits for it, and disposes every live request.
// New requests are refused afterwards.
func (hs *handles) close() {
	hs.mu.Lock()
	if hs.closed {
		hs.mu.Unlock()
		<-hs.done
		return
	}
	hs.closed = true
	all := hs.m
	hs.m = map[string]*handle{}
	hs.slots -= len(all)
	hs.mu.Unlock()
	close(hs.stop)
	<-hs.done
	for _, h := range all {
		h.req.Dispose()
		h.releaseSlots()
	}
}
