package server

import (
	"bytes"
	"encoding/json"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/eddyrt/eddy/internal/outbox"
	"github.com/eddyrt/eddy/internal/protocol"
)

// recordingWriter is an outbox transport that keeps every frame handed to it.
type recordingWriter struct {
	mu     sync.Mutex
	frames [][]byte
}

func (w *recordingWriter) WriteFrames(frames [][]byte) error {
	w.mu.Lock()
	defer w.mu.Unlock()
	for _, f := range frames {
		w.frames = append(w.frames, append([]byte(nil), f...))
	}
	return nil
}

func (w *recordingWriter) WritePing() error { return nil }

func (w *recordingWriter) got() [][]byte {
	w.mu.Lock()
	defer w.mu.Unlock()
	return append([][]byte(nil), w.frames...)
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

// TestPresenceWindowIsOneSharedFramePerSubscriber: the events of one
// window reach each subscriber as one enqueued frame, the same bytes for
// all, holding the events in order, one JSON object per line.
func TestPresenceWindowIsOneSharedFramePerSubscriber(t *testing.T) {
	f := newPresenceFanout(time.Hour) // flushed by hand below
	const subscribers, events = 3, 5
	writers := make([]*recordingWriter, subscribers)
	for i := range writers {
		writers[i] = &recordingWriter{}
		c := &conn{out: outbox.New(writers[i], outbox.Options{})}
		f.add(&subscription{c: c, channel: "room"})
	}
	for i := 0; i < events; i++ {
		f.publish(&protocol.PresenceEvent{Channel: "room", Action: protocol.ActionJoin, Member: protocol.Member{User: "u", Conn: fmt.Sprint("c", i)}})
	}
	f.publish(&protocol.PresenceEvent{Channel: "nobody-listens", Action: protocol.ActionJoin})
	f.shard("room").channels["room"].flush()

	var first []byte
	for i, w := range writers {
		waitUntil(t, "the frame", func() bool { return len(w.got()) > 0 })
		frames := w.got()
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

func TestPresenceWindowFlushesByItselfAndForgetsEmptyChannels(t *testing.T) {
	f := newPresenceFanout(time.Millisecond)
	w := &recordingWriter{}
	sub := &subscription{c: &conn{out: outbox.New(w, outbox.Options{})}, channel: "room"}
	f.add(sub)
	f.publish(&protocol.PresenceEvent{Channel: "room", Action: protocol.ActionJoin})
	waitUntil(t, "the timer's flush", func() bool { return len(w.got()) == 1 })
	f.remove(sub)
	if len(f.shard("room").channels) != 0 {
		t.Fatal("a channel without subscribers is still held")
	}
}

func TestJoinFramesSplitsAtTheLimit(t *testing.T) {
	frames := [][]byte{[]byte("aaaa"), []byte("bbbb"), []byte("cccc"), []byte("dddddddddddd")}
	var got []string
	for rest := frames; len(rest) > 0; {
		var joined []byte
		joined, rest = joinFrames(rest, 10)
		got = append(got, string(joined))
	}
	if want := []string{"aaaa\nbbbb", "cccc", "dddddddddddd"}; fmt.Sprint(got) != fmt.Sprint(want) {
		t.Fatalf("got %q, want %q", got, want)
	}
}
