package hub

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/eddyrt/eddy/internal/broker/memory"
	"github.com/eddyrt/eddy/internal/protocol"
)

// presenceRecorder is a Subscriber that keeps the presence frames it gets.
type presenceRecorder struct {
	mu     sync.Mutex
	frames [][]byte
}

func (r *presenceRecorder) Deliver(*protocol.Message, []byte) {}

func (r *presenceRecorder) DeliverPresence(frame []byte, _ []PresenceItem) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.frames = append(r.frames, frame)
}

func (r *presenceRecorder) got() [][]byte {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([][]byte(nil), r.frames...)
}

func waitUntil(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(time.Millisecond)
	}
}

func (h *Hub) setOf(channel string) *subSet {
	sh := &h.shards[h.index(channel)%shardCount]
	sh.mu.RLock()
	defer sh.mu.RUnlock()
	return sh.channels[channel]
}

// The events of one window reach each subscriber as one frame, the same
// bytes for all, holding the events in order, one JSON object per line.
func TestPresenceWindowIsOneSharedFramePerSubscriber(t *testing.T) {
	h := NewWithWindow(memory.New(), time.Hour) // flushed by hand below
	const subscribers, events = 3, 5
	recs := make([]*presenceRecorder, subscribers)
	for i := range recs {
		recs[i] = &presenceRecorder{}
		if err := h.Subscribe(context.Background(), "room", recs[i]); err != nil {
			t.Fatal(err)
		}
	}
	for i := 0; i < events; i++ {
		h.HandlePresence(&protocol.PresenceEvent{Channel: "room", Action: protocol.ActionJoin, Member: protocol.Member{User: "u", Conn: fmt.Sprint("c", i)}})
	}
	h.HandlePresence(&protocol.PresenceEvent{Channel: "nobody-listens", Action: protocol.ActionJoin})
	subs := h.setOf("room")
	h.flushPresence("room", subs, subs.presence.Load())

	var first []byte
	for i, r := range recs {
		frames := r.got()
		if len(frames) != 1 {
			t.Fatalf("subscriber %d got %d frames, want 1", i, len(frames))
		}
		if first == nil {
			first = frames[0]
		} else if !bytes.Equal(first, frames[0]) {
			t.Fatalf("subscribers got different bytes")
		}
	}
	lines := bytes.Split(first, []byte("\n"))
	if len(lines) != events {
		t.Fatalf("frame has %d lines, want %d: %s", len(lines), events, first)
	}
	for i, l := range lines {
		var ev protocol.PresenceEvent
		if err := json.Unmarshal(l, &ev); err != nil || ev.Type != "presence" || ev.Member.Conn != fmt.Sprint("c", i) {
			t.Fatalf("line %d: %s (%v)", i, l, err)
		}
	}
}

// A window flushes by itself; a channel whose last subscriber left is
// forgotten, and a window still open for it delivers to nobody.
func TestPresenceWindowFlushesByItselfAndForgetsEmptyChannels(t *testing.T) {
	h := NewWithWindow(memory.New(), time.Millisecond)
	r := &presenceRecorder{}
	if err := h.Subscribe(context.Background(), "room", r); err != nil {
		t.Fatal(err)
	}
	h.HandlePresence(&protocol.PresenceEvent{Channel: "room", Action: protocol.ActionJoin})
	waitUntil(t, "the timer's flush", func() bool { return len(r.got()) == 1 })

	h2 := NewWithWindow(memory.New(), time.Hour)
	r2 := &presenceRecorder{}
	if err := h2.Subscribe(context.Background(), "room", r2); err != nil {
		t.Fatal(err)
	}
	h2.HandlePresence(&protocol.PresenceEvent{Channel: "room", Action: protocol.ActionJoin})
	subs := h2.setOf("room")
	if err := h2.Unsubscribe(context.Background(), "room", r2); err != nil {
		t.Fatal(err)
	}
	if h2.setOf("room") != nil {
		t.Fatal("a channel without subscribers is still held")
	}
	h2.flushPresence("room", subs, subs.presence.Load())
	if len(r2.got()) != 0 {
		t.Fatal("a window of a forgotten channel was delivered")
	}
}
