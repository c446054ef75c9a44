package outbox

import (
	"slices"
	"strings"
	"testing"
	"time"
)

// batchWriter reports every write (one batch of frames) on a channel,
// optionally blocking each write until gate lets it go.
type batchWriter struct {
	batches chan []string
	gate    chan struct{}
	entered chan struct{} // a write started (with gate)
}

func (w *batchWriter) WriteFrames(f [][]byte) error {
	if w.gate != nil {
		w.entered <- struct{}{}
		<-w.gate
	}
	var b []string
	for _, x := range f {
		b = append(b, string(x))
	}
	w.batches <- b
	return nil
}
func (w *batchWriter) WritePing() error { return nil }

func nextBatch(t *testing.T, w *batchWriter) []string {
	t.Helper()
	select {
	case b := <-w.batches:
		return b
	case <-time.After(10 * time.Second):
		// The window is an hour: only a reply that waited for it gets here.
		t.Fatal("nothing written: the reply waited for the coalescing window")
		return nil
	}
}

// TestReplyDoesNotWaitForTheWindow: with a coalescing window of an hour, a
// pushed frame queued after a write waits, and a reply queued behind it
// takes it along at once, after it, in one write.
func TestReplyDoesNotWaitForTheWindow(t *testing.T) {
	for _, pool := range []*Pool{nil, NewPool(2, time.Hour)} {
		w := &batchWriter{batches: make(chan []string, 10)}
		o := New(w, Options{MaxQueueBytes: 1 << 20, FlushDelay: time.Hour, Writers: pool})
		if err := o.Enqueue([]byte("m1")); err != nil { // quiet connection: leaves at once
			t.Fatal(err)
		}
		if b := nextBatch(t, w); !slices.Equal(b, []string{"m1"}) {
			t.Fatalf("first write %v", b)
		}
		// The window is open now: these wait for it.
		_ = o.Enqueue([]byte("m2"))
		_ = o.Enqueue([]byte("m3"))
		select {
		case b := <-w.batches:
			t.Fatalf("pushed frames %v did not wait for the window", b)
		default:
		}
		if err := o.PushReply([]byte("reply")); err != nil {
			t.Fatal(err)
		}
		if b := nextBatch(t, w); !slices.Equal(b, []string{"m2", "m3", "reply"}) {
			t.Fatalf("write after the reply %v, want [m2 m3 reply]", b)
		}
	}
}

// TestReplyDuringAWriteFollowsIt: a reply queued while a write is in
// progress leaves right after it, without the window in between.
func TestReplyDuringAWriteFollowsIt(t *testing.T) {
	w := &batchWriter{batches: make(chan []string, 10), gate: make(chan struct{}, 10), entered: make(chan struct{}, 10)}
	o := New(w, Options{MaxQueueBytes: 1 << 20, FlushDelay: time.Hour, Writers: NewPool(1, time.Hour)})
	_ = o.Enqueue([]byte("m1"))
	<-w.entered // m1 is in the write, held at the gate
	_ = o.Enqueue([]byte("m2"))
	_ = o.PushReply([]byte("reply"))
	_ = o.Enqueue([]byte("m3")) // behind the reply: comes along
	w.gate <- struct{}{}
	w.gate <- struct{}{}
	if b := nextBatch(t, w); !slices.Equal(b, []string{"m1"}) {
		t.Fatalf("first write %v", b)
	}
	if b := nextBatch(t, w); !slices.Equal(b, []string{"m2", "reply", "m3"}) {
		t.Fatalf("second write %v, want [m2 reply m3]", b)
	}
}

// TestFullBatchEndsTheWindow: pushed frames wait for the window only until
// a quarter of MaxQueueBytes is queued; a fast stream then leaves without
// waiting, so it never fills the queue within one window.
func TestFullBatchEndsTheWindow(t *testing.T) {
	w := &batchWriter{batches: make(chan []string, 10)}
	o := New(w, Options{MaxQueueBytes: 400, FlushDelay: time.Hour})
	_ = o.Enqueue([]byte("m0")) // quiet connection: leaves at once
	if b := nextBatch(t, w); !slices.Equal(b, []string{"m0"}) {
		t.Fatalf("first write %v", b)
	}
	frame := []byte(strings.Repeat("x", 30))
	for range 3 { // 90 bytes: waits
		if err := o.Enqueue(frame); err != nil {
			t.Fatal(err)
		}
	}
	select {
	case b := <-w.batches:
		t.Fatalf("%d frames did not wait for the window", len(b))
	default:
	}
	_ = o.Enqueue(frame) // 120 bytes, past 400/4
	if b := nextBatch(t, w); len(b) != 4 {
		t.Fatalf("wrote %d frames, want the 4 queued", len(b))
	}
}
