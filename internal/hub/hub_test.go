package hub_test

import (
	"context"
	"encoding/json"
	"sync/atomic"
	"testing"
	"time"

	"github.com/eddyrt/eddy/internal/broker"
	"github.com/eddyrt/eddy/internal/broker/memory"
	"github.com/eddyrt/eddy/internal/hub"
	"github.com/eddyrt/eddy/internal/outbox"
	"github.com/eddyrt/eddy/internal/protocol"
)

// countingWriter stands in for a socket: it counts frames and writes.
type countingWriter struct{ frames, writes atomic.Int64 }

func (w *countingWriter) WriteFrames(f [][]byte) error {
	w.frames.Add(int64(len(f)))
	w.writes.Add(1)
	return nil
}
func (w *countingWriter) WritePing() error { return nil }

type outboxSub struct{ out *outbox.Outbox }

func (s outboxSub) Deliver(_ *protocol.Message, frame []byte)          { _ = s.out.Enqueue(frame) }
func (s outboxSub) DeliverPresence(frame []byte, _ []hub.PresenceItem) { _ = s.out.Enqueue(frame) }

func setup(tb testing.TB, n int) (*memory.Broker, *hub.Hub, *countingWriter) {
	return setupWith(tb, n, outbox.Options{MaxQueueBytes: 64 << 20})
}

func setupWith(tb testing.TB, n int, opts outbox.Options) (*memory.Broker, *hub.Hub, *countingWriter) {
	b := memory.New()
	h := hub.New(b)
	if err := b.Start(context.Background(), h); err != nil {
		tb.Fatal(err)
	}
	w := &countingWriter{}
	for i := 0; i < n; i++ {
		if err := h.Subscribe(context.Background(), "room", outboxSub{outbox.New(w, opts)}); err != nil {
			tb.Fatal(err)
		}
	}
	return b, h, w
}

func TestFanOutReachesEverySubscriberOnce(t *testing.T) {
	b, h, w := setup(t, 1000)
	for i := 0; i < 10; i++ {
		if _, err := b.Publish(context.Background(), &protocol.Message{Channel: "room", Event: "e", Data: json.RawMessage(`1`)}, broker.ChannelOptions{}); err != nil {
			t.Fatal(err)
		}
	}
	waitFrames(t, w, 10*1000)
	if got := w.frames.Load(); got != 10*1000 {
		t.Fatalf("delivered %d frames, want %d", got, 10*1000)
	}
	if got := h.Stats(); got.Subscriptions != 1000 || got.Channels != 1 || got.Delivered != 10000 {
		t.Fatalf("stats %+v", got)
	}
}

// waitFrames waits until w has at least want frames, failing after a
// deadline: a lost frame must fail the test, not spin until the global
// timeout.
func waitFrames(tb testing.TB, w *countingWriter, want int64) {
	tb.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for w.frames.Load() < want {
		if time.Now().After(deadline) {
			tb.Fatalf("delivered %d frames after 10 s, want %d", w.frames.Load(), want)
		}
		time.Sleep(time.Millisecond)
	}
}

// BenchmarkFanOut10k: one publish to 10,000 local subscribers, through the
// memory broker, hub and each subscriber's outbox (flushed to a counting
// writer instead of a socket, so the figure is the server's own cost).
func BenchmarkFanOut10k(b *testing.B) {
	benchFanOut(b, outbox.Options{MaxQueueBytes: 64 << 20})
}

// BenchmarkFanOut10kPool is the same through the server's writer set-up:
// a shared writer pool and a coalescing delay.
func BenchmarkFanOut10kPool(b *testing.B) {
	benchFanOut(b, outbox.Options{MaxQueueBytes: 64 << 20, FlushDelay: 20 * time.Millisecond, Writers: outbox.NewPool(8, 50*time.Millisecond)})
}

func benchFanOut(b *testing.B, opts outbox.Options) {
	br, _, w := setupWith(b, 10000, opts)
	data := json.RawMessage(`{"text":"hello world"}`)
	b.ReportAllocs()
	b.ResetTimer()
	for b.Loop() {
		if _, err := br.Publish(context.Background(), &protocol.Message{Channel: "room", Event: "e", Data: data, ID: "m"}, broker.ChannelOptions{}); err != nil {
			b.Fatal(err)
		}
	}
	want := int64(b.N) * 10000
	waitFrames(b, w, want)
	b.ReportMetric(float64(want)/b.Elapsed().Seconds(), "deliveries/s")
	b.ReportMetric(float64(want)/float64(w.writes.Load()), "frames/write")
}

type recordingSub struct {
	id  int
	got *[]int
}

func (s *recordingSub) Deliver(*protocol.Message, []byte)          { *s.got = append(*s.got, s.id) }
func (s *recordingSub) DeliverPresence([]byte, []hub.PresenceItem) {}

// TestSubscribeUnsubscribeKeepsTheSetExact drives a channel's subscriber
// set across its small (searched) and large (indexed) forms.
func TestSubscribeUnsubscribeKeepsTheSetExact(t *testing.T) {
	b := memory.New()
	h := hub.New(b)
	if err := b.Start(context.Background(), h); err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	var got []int
	subs := make([]*recordingSub, 100)
	want := map[int]bool{}
	for i := range subs {
		subs[i] = &recordingSub{id: i, got: &got}
		if err := h.Subscribe(ctx, "room", subs[i]); err != nil {
			t.Fatal(err)
		}
		want[i] = true
	}
	_ = h.Subscribe(ctx, "room", subs[3]) // twice: still once
	for _, i := range []int{0, 99, 50, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16, 17, 18, 19, 20, 21, 22, 23, 24, 25, 26, 27, 28, 29, 30, 31, 32, 33, 34, 35, 36, 37, 38, 39, 40, 41, 42, 43, 44, 45, 46, 47, 48, 49, 51, 52, 53, 54, 55, 56, 57, 58, 59, 60, 61, 62, 63, 64, 65, 66, 67, 68, 69, 70, 71, 72, 73, 74, 75, 76, 77, 78, 79, 80, 81, 82, 83, 84, 85, 86, 87, 88, 89, 90, 91, 92} {
		if err := h.Unsubscribe(ctx, "room", subs[i]); err != nil {
			t.Fatal(err)
		}
		delete(want, i)
	}
	_ = h.Unsubscribe(ctx, "room", subs[0]) // not subscribed: no-op
	if n := h.Subscribers("room"); n != len(want) {
		t.Fatalf("%d subscribers, want %d", n, len(want))
	}
	if _, err := b.Publish(ctx, &protocol.Message{Channel: "room", Event: "e", Data: json.RawMessage(`1`)}, broker.ChannelOptions{}); err != nil {
		t.Fatal(err)
	}
	seen := map[int]bool{}
	for _, id := range got {
		if seen[id] || !want[id] {
			t.Fatalf("delivered to %d (seen before %v, subscribed %v)", id, seen[id], want[id])
		}
		seen[id] = true
	}
	if len(seen) != len(want) {
		t.Fatalf("delivered to %d, want %d", len(seen), len(want))
	}
	for id := range want {
		_ = h.Unsubscribe(ctx, "room", subs[id])
	}
	if st := h.Stats(); st.Channels != 0 || st.Subscriptions != 0 {
		t.Fatalf("stats %+v after everyone left", st)
	}
}
