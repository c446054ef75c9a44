package hub_test

import (
	"context"
	"encoding/json"
	"sync/atomic"
	"testing"

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

func (s outboxSub) Deliver(_ *protocol.Message, frame []byte) { _ = s.out.Enqueue(frame) }
func (s outboxSub) DeliverPresence(frame []byte)              { _ = s.out.Enqueue(frame) }

func setup(tb testing.TB, n int) (*memory.Broker, *hub.Hub, *countingWriter) {
	b := memory.New()
	h := hub.New(b)
	if err := b.Start(context.Background(), h); err != nil {
		tb.Fatal(err)
	}
	w := &countingWriter{}
	for i := 0; i < n; i++ {
		if err := h.Subscribe(context.Background(), "room", outboxSub{outbox.New(w, outbox.Options{MaxQueueBytes: 64 << 20})}); err != nil {
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
	for w.frames.Load() != 10*1000 {
		if w.frames.Load() > 10*1000 {
			t.Fatalf("delivered %d frames, want %d", w.frames.Load(), 10*1000)
		}
	}
	if got := h.Stats(); got.Subscriptions != 1000 || got.Channels != 1 || got.Delivered != 10000 {
		t.Fatalf("stats %+v", got)
	}
}

// BenchmarkFanOut10k: one publish to 10,000 local subscribers, through the
// memory broker, hub and each subscriber's outbox (flushed to a counting
// writer instead of a socket, so the figure is the server's own cost).
func BenchmarkFanOut10k(b *testing.B) {
	br, _, w := setup(b, 10000)
	data := json.RawMessage(`{"text":"hello world"}`)
	b.ReportAllocs()
	b.ResetTimer()
	for b.Loop() {
		if _, err := br.Publish(context.Background(), &protocol.Message{Channel: "room", Event: "e", Data: data, ID: "m"}, broker.ChannelOptions{}); err != nil {
			b.Fatal(err)
		}
	}
	want := int64(b.N) * 10000
	for w.frames.Load() < want {
	}
	b.ReportMetric(float64(want)/b.Elapsed().Seconds(), "deliveries/s")
	b.ReportMetric(float64(want)/float64(w.writes.Load()), "frames/write")
}
