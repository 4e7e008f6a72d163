package httpengine_test

import (
	"context"
	"errors"
	"io"
	"testing"

	"github.com/httpgateway/httpgateway/internal/httpengine"
)

// TestEventLogDropDelivered: the one consumer is done, so the delivered
// events go (their sequence numbers are ErrEventGone); the undelivered
// ones stay readable and the log still ends with io.EOF.
func TestEventLogDropDelivered(t *testing.T) {
	ctx := context.Background()
	l := httpengine.NewEventLog(0)
	for _, k := range []httpengine.EventKind{httpengine.EventSocket, httpengine.EventData, httpengine.EventEnd} {
		l.Append(httpengine.Event{Kind: k, Data: make([]byte, 64<<10)})
	}
	for seq := uint64(1); seq <= 2; seq++ {
		if _, err := l.Next(ctx, seq); err != nil {
			t.Fatalf("Next(%d): %v", seq, err)
		}
	}
	l.DropDelivered()
	for seq := uint64(1); seq <= 2; seq++ {
		if _, err := l.Next(ctx, seq); !errors.Is(err, httpengine.ErrEventGone) {
			t.Fatalf("Next(%d) after DropDelivered: %v, want ErrEventGone", seq, err)
		}
	}
	ev, err := l.Next(ctx, 3)
	if err != nil || ev.Kind != httpengine.EventEnd || ev.Seq != 3 {
		t.Fatalf("Next(3) = %v (seq %d), %v; want end, 3", ev, ev.Seq, err)
	}
	l.Append(httpengine.Event{Kind: httpengine.EventClose})
	l.Finish()
	if _, err := l.Next(ctx, 4); err != nil {
		t.Fatalf("Next(4): %v", err)
	}
	l.DropDelivered() // everything delivered: nothing left
	if got := l.LastSeq(); got != 4 {
		t.Fatalf("LastSeq = %d after dropping all, want 4", got)
	}
	if _, err := l.Next(ctx, 5); !errors.Is(err, io.EOF) {
		t.Fatalf("Next(5) = %v, want io.EOF", err)
	}
	if !l.AllDelivered() {
		t.Fatal("AllDelivered = false after every event was read")
	}
}
