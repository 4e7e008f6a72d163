package httpengine

import (
	"context"
	"errors"
	"io"
	"sync"
	"sync/atomic"
	"time"
)

// ErrEventGone is returned by EventLog.Next for a sequence number whose event
// was already delivered and then dropped to keep the log bounded.
var ErrEventGone = errors.New("event no longer retained")

// Default bounds of an EventLog.
const (
	DefaultEventBufferBytes = 1 << 20 // undelivered body bytes before socket reads pause
	maxRetainedEvents       = 4096    // delivered events kept for resubscription
)

// EventLog is the ordered record of one request's events. Appending never
// blocks, so emitting an event can never deadlock the state machine; instead
// the body reader calls WaitRoom before each read, which is what pauses the
// socket while subscribers lag (backpressure, bounded memory).
//
// Events are numbered from 1. Readers may start at any retained sequence
// number; delivered events are dropped oldest first once the retained data
// exceeds the bound, so a resubscription from long ago gets ErrEventGone.
type EventLog struct {
	start time.Time
	limit int

	mu sync.Mutex // guards every field below
	// events holds the retained events; events[i].Seq == base+i.
	events []Event
	base   uint64
	// delivered is the highest sequence number handed to any reader.
	delivered uint64
	// undelivered counts data bytes in events after delivered.
	undelivered int
	// retained counts the memory the data of all retained events pins
	// (heldBytes: a handed-over read buffer pins its whole capacity).
	retained int
	// finished is set after the last event: readers past it get io.EOF.
	finished bool
	// wake, when not nil, is closed (and set to nil) when an event is
	// appended, the log finishes, or a read makes room. Waiters create it
	// (waitChanLocked), so appending allocates no channel while nobody waits.
	wake chan struct{}
	// reuse: data buffers go back to the pool once their event left the
	// log and no reader holds them (Options.ReuseBodyBuffers); lingering
	// counts the holds on the buffers of events that left the log while
	// held.
	reuse     bool
	lingering map[*[]byte]int32
}

// NewEventLog returns an empty log whose undelivered body data is bounded by
// limit bytes (DefaultEventBufferBytes when limit <= 0).
func NewEventLog(limit int) *EventLog {
	if limit <= 0 {
		limit = DefaultEventBufferBytes
	}
	// A small exchange has about seven events (socket, finish, response,
	// data, end, close, close): room for eight covers it in one allocation.
	return &EventLog{start: time.Now(), limit: limit, base: 1, events: make([]Event, 0, 8)}
}

func (l *EventLog) wakeLocked() {
	if l.wake != nil {
		close(l.wake)
		l.wake = nil
	}
}

// waitChanLocked returns the channel the next wake closes.
func (l *EventLog) waitChanLocked() chan struct{} {
	if l.wake == nil {
		l.wake = make(chan struct{})
	}
	return l.wake
}

// Append stamps ev with its sequence number and times, records it and wakes
// readers. It never blocks.
func (l *EventLog) Append(ev Event) uint64 { return l.appendStamped(ev, false).Seq }

// appendStamped is Append returning the event as recorded (seq and times).
// With hold, the caller holds the event's buffer as a NextHeld reader
// would, and calls Done once it no longer reads ev.Data.
func (l *EventLog) appendStamped(ev Event, hold bool) Event {
	now := time.Now()
	l.mu.Lock()
	ev.Seq = l.base + uint64(len(l.events))
	ev.Time = now
	ev.Mono = now.Sub(l.start)
	ev.holds = 0
	if hold && ev.buf != nil && l.reuse {
		ev.holds = 1
	}
	l.events = append(l.events, ev)
	if ev.holds == 0 {
		ev.buf = nil // nothing for Done to give back
	}
	l.undelivered += len(ev.Data)
	l.retained += heldBytes(&ev)
	l.wakeLocked()
	l.mu.Unlock()
	return ev
}

// Finish marks that no event follows the last one appended.
func (l *EventLog) Finish() {
	l.mu.Lock()
	if !l.finished {
		l.finished = true
		l.wakeLocked()
	}
	l.mu.Unlock()
}

// LastSeq returns the sequence number of the last event appended (0 if none).
func (l *EventLog) LastSeq() uint64 {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.base + uint64(len(l.events)) - 1
}

// Finished reports whether Finish was called.
func (l *EventLog) Finished() bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.finished
}

// AllDelivered reports whether the log is finished and every event was read.
func (l *EventLog) AllDelivered() bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.finished && l.delivered == l.base+uint64(len(l.events))-1
}

// WaitRoom blocks while the undelivered body data is at or over the bound.
// It returns false when done is closed first.
func (l *EventLog) WaitRoom(done <-chan struct{}) bool {
	for {
		l.mu.Lock()
		if l.undelivered < l.limit {
			l.mu.Unlock()
			return true
		}
		wake := l.waitChanLocked()
		l.mu.Unlock()
		select {
		case <-wake:
		case <-done:
			return false
		}
	}
}

// Next returns the event with sequence number seq, waiting for it to be
// appended. It returns io.EOF when the log finished before seq, ErrEventGone
// when seq was dropped, or ctx's error.
func (l *EventLog) Next(ctx context.Context, seq uint64) (Event, error) {
	return l.next(ctx, seq, false)
}

// NextHeld is Next for a reader that calls Done(&ev) once it no longer
// reads ev.Data (with Options.ReuseBodyBuffers the buffer is reused after
// that). A
// reader must not call Done for an event it still reads, nor twice.
func (l *EventLog) NextHeld(ctx context.Context, seq uint64) (Event, error) {
	return l.next(ctx, seq, true)
}

// Done ends the hold NextHeld took on ev's buffer: it goes back to the
// pool if its event already left the log and nobody else holds it. A
// no-op for an event without one (not data, or no reuse).
func (l *EventLog) Done(ev *Event) {
	buf := ev.buf
	if buf == nil {
		return
	}
	ev.buf = nil
	l.mu.Lock()
	defer l.mu.Unlock()
	if ev.Seq >= l.base {
		if i := ev.Seq - l.base; i < uint64(len(l.events)) && l.events[i].buf == buf {
			if l.events[i].holds > 0 { // never below zero, even for a misused Done
				l.events[i].holds--
			}
			return
		}
	}
	n, ok := l.lingering[buf]
	switch {
	case !ok: // not ours to give back (cannot happen: a held buffer lingers)
	case n > 1:
		l.lingering[buf] = n - 1
	default:
		delete(l.lingering, buf)
		giveBack(buf)
	}
}

// buffersReused counts the read buffers event logs gave back (for tests).
var buffersReused atomic.Uint64

func giveBack(buf *[]byte) {
	buffersReused.Add(1)
	chunkPool.Put(buf)
}

// leaveLocked is called for each event leaving the log. With reuse its
// buffer goes back to the pool unless a reader holds it (it lingers until
// the last Done) or a plain Next read it (it is never reused).
func (l *EventLog) leaveLocked(ev *Event) {
	if !l.reuse || ev.buf == nil || ev.escaped {
		return
	}
	if ev.holds > 0 {
		if l.lingering == nil {
			l.lingering = map[*[]byte]int32{}
		}
		l.lingering[ev.buf] = ev.holds
		return
	}
	giveBack(ev.buf)
}

func (l *EventLog) next(ctx context.Context, seq uint64, hold bool) (Event, error) {
	if seq == 0 {
		seq = 1
	}
	for {
		l.mu.Lock()
		if seq < l.base {
			l.mu.Unlock()
			return Event{}, ErrEventGone
		}
		if i := seq - l.base; i < uint64(len(l.events)) {
			slot := &l.events[i]
			ev := *slot
			ev.buf, ev.holds, ev.escaped = nil, 0, false
			if slot.buf != nil && l.reuse {
				if hold {
					slot.holds++
					ev.buf = slot.buf
				} else {
					slot.escaped = true
				}
			}
			l.deliverLocked(seq)
			l.mu.Unlock()
			return ev, nil
		}
		if l.finished {
			l.mu.Unlock()
			return Event{}, io.EOF
		}
		wake := l.waitChanLocked()
		l.mu.Unlock()
		select {
		case <-wake:
		case <-ctx.Done():
			return Event{}, ctx.Err()
		}
	}
}

// deliverLocked records that seq was handed out, releases its data from the
// undelivered count (making room for the body reader) and trims delivered
// events past the retention bounds.
func (l *EventLog) deliverLocked(seq uint64) {
	if seq <= l.delivered {
		return
	}
	freed := 0
	for s := l.delivered + 1; s <= seq; s++ {
		freed += len(l.events[s-l.base].Data)
	}
	l.delivered = seq
	l.undelivered -= freed
	for len(l.events) > 0 && l.base <= l.delivered &&
		(l.retained > l.limit || len(l.events) > maxRetainedEvents) {
		l.retained -= heldBytes(&l.events[0])
		l.leaveLocked(&l.events[0])
		l.events[0] = Event{}
		l.events = l.events[1:]
		l.base++
	}
	if freed > 0 {
		l.wakeLocked()
	}
}

// heldBytes is the memory an event's data pins: a read buffer handed over
// whole (see readResponse) keeps its capacity alive, not only its length.
func heldBytes(ev *Event) int { return cap(ev.Data) }

// DropDelivered drops every event already delivered, with its data (a
// reused buffer goes back to the pool), once nobody will read them
// again: the one consumer of a request (Exchange, Fetch) calls it when it
// ends, so
// a finished request kept around for a while (its properties stay
// readable) holds no body data. A later Next for a dropped sequence number
// returns ErrEventGone, as for any event dropped to keep the log bounded.
func (l *EventLog) DropDelivered() {
	l.mu.Lock()
	defer l.mu.Unlock()
	n := 0
	for n < len(l.events) && l.base+uint64(n) <= l.delivered {
		ev := &l.events[n]
		l.leaveLocked(ev)
		l.retained -= heldBytes(ev)
		*ev = Event{}
		n++
	}
	if n == 0 {
		return
	}
	l.base += uint64(n)
	if n == len(l.events) {
		l.events = nil // let the backing array go
	} else {
		l.events = l.events[n:]
	}
}
