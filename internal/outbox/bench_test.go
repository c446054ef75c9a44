package outbox

import (
	"sync/atomic"
	"testing"
	"time"
)

// nullWriter stands in for a socket and counts what it is given.
type nullWriter struct{ frames, writes atomic.Int64 }

func (w *nullWriter) WriteFrames(f [][]byte) error {
	w.frames.Add(int64(len(f)))
	w.writes.Add(1)
	return nil
}
func (w *nullWriter) WritePing() error { return nil }

// BenchmarkWriter is the per-connection writer's own cost: one op is one
// frame enqueued to each of 100 outboxes and flushed, through the shared
// writer pool and with the server's coalescing delay (socket excluded).
func BenchmarkWriter(b *testing.B) {
	for _, c := range []struct {
		name  string
		delay time.Duration
		pool  bool
	}{{"goroutine-per-burst", 0, false}, {"pool", 0, true}, {"pool+delay", 2 * time.Millisecond, true}} {
		b.Run(c.name, func(b *testing.B) {
			const conns = 100
			w := &nullWriter{}
			var pool *Pool
			if c.pool {
				pool = NewPool(8, 50*time.Millisecond)
			}
			outs := make([]*Outbox, conns)
			for i := range outs {
				outs[i] = New(w, Options{MaxQueueBytes: 64 << 20, FlushDelay: c.delay, Writers: pool})
			}
			frame := []byte(`{"type":"message","channel":"room","event":"e","data":{"text":"hello"},"id":"m-1","ts":1,"offset":1,"epoch":"E"}`)
			b.ReportAllocs()
			b.ResetTimer()
			for b.Loop() {
				for _, o := range outs {
					if err := o.Enqueue(frame); err != nil {
						b.Fatal(err)
					}
				}
			}
			want := int64(b.N) * conns
			for w.frames.Load() < want {
				time.Sleep(100 * time.Microsecond)
			}
			b.ReportMetric(float64(want)/float64(w.writes.Load()), "frames/write")
			b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(want), "ns/frame")
		})
	}
}
