package outbox

import (
	"testing"
	"time"
)

// signalWriter reports every write on a channel.
type signalWriter struct{ wrote chan string }

func (w *signalWriter) WriteFrames(f [][]byte) error {
	for _, x := range f {
		w.wrote <- string(x)
	}
	return nil
}
func (w *signalWriter) WritePing() error { return nil }

// TestPoolWatchdogAddsAWriterPastAStuckOne: with the pool's only writer
// blocked in a write that never returns on its own, the watchdog adds a
// writer, so another connection's frame still leaves; once the stuck write
// returns, the extra writers leave again.
func TestPoolWatchdogAddsAWriterPastAStuckOne(t *testing.T) {
	pool := NewPool(1, 5*time.Millisecond)
	stuck := &blockingWriter{gate: make(chan struct{})}
	healthy := &signalWriter{wrote: make(chan string, 1)}
	a := New(stuck, Options{MaxQueueBytes: 1 << 20, Writers: pool})
	b := New(healthy, Options{MaxQueueBytes: 1 << 20, Writers: pool})

	if err := a.Enqueue([]byte("a")); err != nil { // takes the only writer, blocks
		t.Fatal(err)
	}
	if err := b.Enqueue([]byte("b")); err != nil { // waits for a writer
		t.Fatal(err)
	}
	select {
	case f := <-healthy.wrote:
		if f != "b" {
			t.Fatalf("healthy outbox wrote %q", f)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("a writer blocked on one socket held back another connection: the watchdog added no writer")
	}
	close(stuck.gate)
	done := make(chan struct{})
	a.Drain(done)
	<-done
	if got := stuck.all(); len(got) != 1 || got[0] != "a" {
		t.Fatalf("stuck outbox wrote %v", got)
	}
	deadline := time.Now().Add(10 * time.Second)
	for {
		pool.mu.Lock()
		running := pool.running
		pool.mu.Unlock()
		if running == 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("%d writers still running with nothing to write", running)
		}
		time.Sleep(time.Millisecond)
	}
}
