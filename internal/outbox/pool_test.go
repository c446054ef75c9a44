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
	// The extra writer leaves; the pool's own one stays, parked.
	waitPool(t, pool, func(running, parked int) bool { return running == 1 && parked == 1 })
	pool.Close()
	waitPool(t, pool, func(running, _ int) bool { return running == 0 })
}

// TestPoolWatchdogReplacesAStuckWriterWhileOthersProgress: with one of
// two writers blocked in a write while the other finishes steps and
// outboxes wait, a look of the watchdog adds a writer: the pool's size
// counts the writers that make progress, so one blocking socket does not
// halve the pool for as long as its write lasts. (Before, a writer was
// added only when no write at all finished between two looks.) The
// watchdog's looks are made by the test, one at a time.
func TestPoolWatchdogReplacesAStuckWriterWhileOthersProgress(t *testing.T) {
	pool := NewPool(2, time.Hour)
	stuck := &blockingWriter{gate: make(chan struct{})}
	a := New(stuck, Options{MaxQueueBytes: 1 << 20, Writers: pool})
	// The others' writes each wait for a release.
	release := make(chan struct{})
	slow := &blockingWriter{gate: release}
	outs := make([]*Outbox, 3)
	for i := range outs {
		outs[i] = New(slow, Options{MaxQueueBytes: 1 << 20, Writers: pool})
	}
	enqueue := func(o *Outbox) {
		t.Helper()
		if err := o.Enqueue([]byte("x")); err != nil {
			t.Fatal(err)
		}
	}
	enqueue(a) // the first writer blocks for good
	waitWriters(t, pool, func(ws []*writer) bool { return len(ws) == 1 && ws[0].busy })
	enqueue(outs[0]) // the second waits for a release
	waitWriters(t, pool, func(ws []*writer) bool { return len(ws) == 2 && ws[0].busy && ws[1].busy })
	enqueue(outs[1]) // waits for a writer: the watchdog starts, with a first look
	pool.mu.Lock()
	watching := pool.watching
	pool.mu.Unlock()
	if !watching {
		t.Fatal("an outbox waits with every writer busy, and no watchdog looks")
	}
	release <- struct{}{} // the second writer finishes a step, takes outs[1]
	waitWriters(t, pool, func(ws []*writer) bool { return ws[1].steps == 1 && ws[1].busy })
	enqueue(outs[2]) // still an outbox waiting
	if !pool.tick() {
		t.Fatal("the watchdog stopped looking while an outbox waits")
	}
	waitPool(t, pool, func(running, _ int) bool { return running == 3 })

	close(release)
	close(stuck.gate)
	for _, o := range append(outs, a) {
		done := make(chan struct{})
		o.Drain(done)
		<-done
	}
	pool.Close()
	waitPool(t, pool, func(running, _ int) bool { return running == 0 })
}

// waitWriters waits until ok holds for the pool's writers.
func waitWriters(t *testing.T, pool *Pool, ok func([]*writer) bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		pool.mu.Lock()
		done := ok(pool.writers)
		pool.mu.Unlock()
		if done {
			return
		}
		if time.Now().After(deadline) {
			t.Fatal("pool writers never reached the state waited for")
		}
		time.Sleep(time.Millisecond)
	}
}

// TestPoolWritersStayParkedBetweenBursts: a writer that finished a burst
// parks instead of leaving, and the next burst reuses it rather than
// starting another goroutine.
func TestPoolWritersStayParkedBetweenBursts(t *testing.T) {
	pool := NewPool(4, time.Hour)
	w := &signalWriter{wrote: make(chan string, 1)}
	o := New(w, Options{MaxQueueBytes: 1 << 20, Writers: pool})
	for i := range 50 {
		frame := string(rune('a' + i%26))
		if err := o.Enqueue([]byte(frame)); err != nil {
			t.Fatal(err)
		}
		if got := <-w.wrote; got != frame {
			t.Fatalf("wrote %q, want %q", got, frame)
		}
		waitPool(t, pool, func(_, parked int) bool { return parked == 1 })
	}
	pool.mu.Lock()
	running := pool.running
	pool.mu.Unlock()
	if running != 1 {
		t.Fatalf("%d writers for one connection's bursts one after another, want 1", running)
	}
	pool.Close()
	waitPool(t, pool, func(running, _ int) bool { return running == 0 })
	// A closed pool still writes what is submitted, with writers that leave.
	if err := o.Enqueue([]byte("z")); err != nil {
		t.Fatal(err)
	}
	if got := <-w.wrote; got != "z" {
		t.Fatalf("wrote %q after Close, want z", got)
	}
	waitPool(t, pool, func(running, _ int) bool { return running == 0 })
}

// waitPool waits until ok holds for the pool's writer counts.
func waitPool(t *testing.T, pool *Pool, ok func(running, parked int) bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		pool.mu.Lock()
		running, parked := pool.running, pool.parked
		pool.mu.Unlock()
		if ok(running, parked) {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("pool writers: %d running, %d parked", running, parked)
		}
		time.Sleep(time.Millisecond)
	}
}
