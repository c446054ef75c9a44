package outbox

import (
	"errors"
	"strconv"
	"sync"
	"testing"
	"time"
)

type blockingWriter struct {
	mu      sync.Mutex
	batches [][]string
	gate    chan struct{}
	err     error
}

func (w *blockingWriter) WriteFrames(f [][]byte) error {
	if w.gate != nil {
		<-w.gate
	}
	w.mu.Lock()
	defer w.mu.Unlock()
	var batch []string
	for _, x := range f {
		batch = append(batch, string(x))
	}
	w.batches = append(w.batches, batch)
	return w.err
}
func (w *blockingWriter) WritePing() error { return nil }

func (w *blockingWriter) all() []string {
	w.mu.Lock()
	defer w.mu.Unlock()
	var out []string
	for _, b := range w.batches {
		out = append(out, b...)
	}
	return out
}

func TestBatchesWhileAWriteIsInFlight(t *testing.T) {
	w := &blockingWriter{gate: make(chan struct{})}
	o := New(w, Options{MaxQueueBytes: 1 << 20})
	for _, f := range []string{"a", "b", "c", "d"} {
		if err := o.Enqueue([]byte(f)); err != nil {
			t.Fatal(err)
		}
	}
	close(w.gate)
	done := make(chan struct{})
	o.Drain(done)
	<-done
	if got := w.all(); len(got) != 4 || got[0] != "a" || got[3] != "d" {
		t.Fatalf("frames %v", got)
	}
	if len(w.batches) > 2 {
		t.Fatalf("%d writes for 4 frames queued behind one write", len(w.batches))
	}
}

func TestOverflowClosesAndCallsBackOnce(t *testing.T) {
	w := &blockingWriter{gate: make(chan struct{})}
	called := make(chan struct{}, 2)
	o := New(w, Options{MaxQueueBytes: 10, OnOverflow: func() { called <- struct{}{} }})
	_ = o.Enqueue([]byte("12345")) // taken by the flusher, blocked in write
	var err error
	for i := 0; i < 10 && err == nil; i++ {
		err = o.Enqueue([]byte("12345"))
	}
	if !errors.Is(err, ErrOverflow) {
		t.Fatalf("enqueue past the limit: %v", err)
	}
	<-called
	if err := o.Enqueue([]byte("x")); !errors.Is(err, ErrClosed) {
		t.Fatalf("enqueue after overflow: %v", err)
	}
	close(w.gate)
	select {
	case <-called:
		t.Fatal("OnOverflow called twice")
	default:
	}
}

func TestWriteErrorStopsTheOutbox(t *testing.T) {
	w := &blockingWriter{err: errors.New("broken pipe")}
	failed := make(chan error, 1)
	o := New(w, Options{OnWriteError: func(err error) { failed <- err }})
	_ = o.Enqueue([]byte("a"))
	if err := <-failed; err.Error() != "broken pipe" {
		t.Fatal(err)
	}
	if err := o.Enqueue([]byte("b")); !errors.Is(err, ErrClosed) {
		t.Fatalf("enqueue after a write error: %v", err)
	}
}

// TestPoolAndDelayKeepOrderAndDrain: through the shared writer pool and
// with a coalescing delay, every frame leaves once, in order, in fewer
// writes than frames, and Drain still reports.
func TestPoolAndDelayKeepOrderAndDrain(t *testing.T) {
	pool := NewPool(2, 10*time.Millisecond)
	ws := make([]*blockingWriter, 10)
	outs := make([]*Outbox, len(ws))
	for i := range ws {
		ws[i] = &blockingWriter{}
		outs[i] = New(ws[i], Options{MaxQueueBytes: 1 << 20, FlushDelay: 5 * time.Millisecond, Writers: pool})
	}
	for n := 0; n < 200; n++ {
		for _, o := range outs {
			if err := o.Enqueue([]byte(strconv.Itoa(n))); err != nil {
				t.Fatal(err)
			}
		}
		if n%50 == 0 {
			time.Sleep(2 * time.Millisecond)
		}
	}
	for i, o := range outs {
		done := make(chan struct{})
		o.Drain(done)
		select {
		case <-done:
		case <-time.After(5 * time.Second):
			t.Fatalf("outbox %d never drained", i)
		}
		got := ws[i].all()
		if len(got) != 200 {
			t.Fatalf("outbox %d wrote %d frames", i, len(got))
		}
		for n, f := range got {
			if f != strconv.Itoa(n) {
				t.Fatalf("outbox %d frame %d is %q", i, n, f)
			}
		}
		if len(ws[i].batches) >= 200 {
			t.Fatalf("outbox %d: %d writes for 200 frames", i, len(ws[i].batches))
		}
	}
}
