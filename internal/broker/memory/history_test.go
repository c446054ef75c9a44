package memory

import (
	"context"
	"errors"
	"fmt"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/eddyrt/eddy/internal/broker"
	"github.com/eddyrt/eddy/internal/protocol"
)

// await polls cond until it holds, failing after a generous deadline that
// only a broken sweeper reaches.
func await(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// TestSweeperDropsExpiredHistoryOfQuietChannels: channels that are never
// published to or read again lose their history once it passes its TTL,
// by the sweeper alone; their counters stay, so numbering goes on.
func TestSweeperDropsExpiredHistoryOfQuietChannels(t *testing.T) {
	b := NewWithOptions(Options{SweepInterval: 10 * time.Millisecond})
	if err := b.Start(context.Background(), &recorder{}); err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	opts := broker.ChannelOptions{HistorySize: 10, HistoryTTL: 50 * time.Millisecond}
	for i := 0; i < 20; i++ {
		publishN(t, b, fmt.Sprintf("quiet:%d", i), 3, opts)
	}
	publishN(t, b, "forever", 2, broker.ChannelOptions{HistorySize: 10}) // no TTL: kept
	if st := b.Stats(); st.WithHistory != 21 || st.Bytes <= 0 {
		t.Fatalf("after publishing: %+v", st)
	}
	await(t, "the quiet channels' history swept", func() bool {
		st := b.Stats()
		return st.WithHistory == 1
	})
	st := b.Stats()
	if st.Channels != 21 {
		t.Fatalf("channels %d, want 21 counters kept", st.Channels)
	}
	if want := 2 * entrySize(&protocol.Message{Channel: "forever", Event: "e"}); st.Bytes != want {
		t.Fatalf("bytes after the sweep %d, want %d (the two kept messages)", st.Bytes, want)
	}
	pos, err := b.Publish(context.Background(), &protocol.Message{Channel: "quiet:0"}, opts)
	if err != nil || pos.Offset != 4 {
		t.Fatalf("publish after the sweep: %v %v, want offset 4", pos, err)
	}
}

// TestCloseStopsTheSweeper: Close returns only once the sweeper has gone.
func TestCloseStopsTheSweeper(t *testing.T) {
	before := runtime.NumGoroutine()
	b := NewWithOptions(Options{SweepInterval: time.Millisecond})
	if err := b.Start(context.Background(), &recorder{}); err != nil {
		t.Fatal(err)
	}
	if err := b.Close(); err != nil {
		t.Fatal(err)
	}
	_ = b.Close() // twice is fine
	await(t, "goroutines back to where they were", func() bool { return runtime.NumGoroutine() <= before })
}

// TestMaxHistoryBytesEvictsTheOldestChannelsFirst: past the bound, the
// channels published to longest ago lose their history (recovering from
// them is a gap) while the newest keep theirs, and the total stays within
// the bound.
func TestMaxHistoryBytesEvictsTheOldestChannelsFirst(t *testing.T) {
	ctx := context.Background()
	data := []byte(`"` + strings.Repeat("x", 1000) + `"`)
	per := entrySize(&protocol.Message{Channel: "c:00", Event: "e", Data: data})
	const bound = 10 // channels' worth of history
	b := NewWithOptions(Options{MaxHistoryBytes: bound * 3 * per})
	opts := broker.ChannelOptions{HistorySize: 3}
	for i := 0; i < 30; i++ {
		for j := 0; j < 3; j++ {
			if _, err := b.Publish(ctx, &protocol.Message{Channel: fmt.Sprintf("c:%02d", i), Event: "e", Data: data}, opts); err != nil {
				t.Fatal(err)
			}
		}
		if st := b.Stats(); st.Bytes > bound*3*per {
			t.Fatalf("after channel %d: %d bytes kept, bound %d", i, st.Bytes, bound*3*per)
		}
	}
	st := b.Stats()
	if st.WithHistory != bound || st.Evicted != 20 {
		t.Fatalf("stats %+v, want the newest %d channels with history and 20 evicted", st, bound)
	}
	for i := 0; i < 30; i++ {
		ch := fmt.Sprintf("c:%02d", i)
		msgs, pos, err := b.History(ctx, ch, broker.HistoryQuery{Since: &protocol.Position{Epoch: b.Epoch(), Offset: 0}, Options: opts})
		if i < 20 {
			if !errors.Is(err, broker.ErrGap) || pos.Offset != 3 {
				t.Fatalf("%s (evicted): %v at %v, want ErrGap at offset 3", ch, err, pos)
			}
			continue
		}
		if err != nil || len(msgs) != 3 {
			t.Fatalf("%s (newest): %d messages, %v; want all 3", ch, len(msgs), err)
		}
	}
	// Publishing to an old channel makes it the newest: the next eviction
	// takes c:20, not c:00.
	for j := 0; j < 3; j++ {
		_, _ = b.Publish(ctx, &protocol.Message{Channel: "c:00", Event: "e", Data: data}, opts)
	}
	if _, _, err := b.History(ctx, "c:20", broker.HistoryQuery{Since: &protocol.Position{Epoch: b.Epoch()}, Options: opts}); !errors.Is(err, broker.ErrGap) {
		t.Fatalf("c:20 after c:00 was republished: %v, want it evicted", err)
	}
	if msgs, _, err := b.History(ctx, "c:21", broker.HistoryQuery{Options: opts}); err != nil || len(msgs) != 3 {
		t.Fatalf("c:21: %d %v, want kept", len(msgs), err)
	}
}

// TestHistoryBytesFollowEveryChange: the byte count returns to zero when
// every message has gone, whichever way it went (overwritten, shrunk,
// switched off, expired on read).
func TestHistoryBytesFollowEveryChange(t *testing.T) {
	ctx := context.Background()
	b := New()
	b.now = func() time.Time { return time.Unix(1000, 0) }
	publishN(t, b, "a", 50, broker.ChannelOptions{HistorySize: 20})
	publishN(t, b, "a", 1, broker.ChannelOptions{HistorySize: 5})
	msgs, _, _ := b.History(ctx, "a", broker.HistoryQuery{})
	var want int64
	for _, m := range msgs {
		want += entrySize(m)
	}
	if got := b.Stats().Bytes; got != want || len(msgs) != 5 {
		t.Fatalf("bytes %d for %d kept messages, want %d", got, len(msgs), want)
	}
	publishN(t, b, "a", 1, broker.ChannelOptions{})
	publishN(t, b, "t", 5, broker.ChannelOptions{HistorySize: 5, HistoryTTL: time.Second})
	b.now = func() time.Time { return time.Unix(2000, 0) }
	_, _, _ = b.History(ctx, "t", broker.HistoryQuery{Options: broker.ChannelOptions{HistorySize: 5, HistoryTTL: time.Second}})
	if st := b.Stats(); st.Bytes != 0 || st.WithHistory != 0 {
		t.Fatalf("after switching off and expiring: %+v, want nothing kept", st)
	}
}

// TestEmptyChannelCost measures what a channel without history costs: its
// name (held as the map key), its counter and its map slot.
// docs/guarantees.md states this figure.
func TestEmptyChannelCost(t *testing.T) {
	const n = 100_000
	b := New()
	var before, after runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&before)
	for i := 0; i < n; i++ {
		name := fmt.Sprintf("room:%08d", i) // 13 bytes, a typical short name
		if _, err := b.Publish(context.Background(), &protocol.Message{Channel: name}, broker.ChannelOptions{}); err != nil {
			t.Fatal(err)
		}
	}
	runtime.GC()
	runtime.ReadMemStats(&after)
	per := float64(int64(after.HeapAlloc)-int64(before.HeapAlloc)) / n
	t.Logf("an empty channel costs %.0f bytes of heap (13-byte name, %d channels)", per, n)
	if per > 200 {
		t.Fatalf("an empty channel costs %.0f B; docs/guarantees.md says about 70-100 B", per)
	}
	runtime.KeepAlive(b)
}
