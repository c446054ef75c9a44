// Package outbox is a connection's bounded outgoing queue: frames are
// appended without blocking and leave in batched writes from a goroutine
// that exists only while there is something to write.
package outbox

import (
	"errors"
	"sync"
)

// Writer is the transport under an outbox. Calls come from one goroutine at
// a time and never with the outbox's lock held.
type Writer interface {
	// WriteFrames writes the frames as one WebSocket text message, joined by
	// newlines (the protocol's batching).
	WriteFrames(frames [][]byte) error
	// WritePing writes a WebSocket ping.
	WritePing() error
}

// Options tune an outbox.
type Options struct {
	// MaxQueueBytes is how many bytes may wait; past it the outbox closes
	// itself and calls OnOverflow, so one slow consumer never holds memory
	// or anyone else back.
	MaxQueueBytes int
	// MaxBatchBytes caps one WebSocket message; a longer queue leaves in
	// several. 0 means 256 KiB.
	MaxBatchBytes int
	// OnOverflow is called once, in its own goroutine, when the queue overflows.
	OnOverflow func()
	// OnWriteError is called once, in the flushing goroutine, when a write fails.
	OnWriteError func(error)
}

// ErrClosed is returned for frames offered to a closed outbox.
var ErrClosed = errors.New("outbox closed")

// ErrOverflow is returned for the frame that overflowed the queue.
var ErrOverflow = errors.New("outbox queue over its limit")

// Outbox queues frames for one connection.
type Outbox struct {
	w    Writer
	opts Options

	mu       sync.Mutex
	queue    [][]byte
	spare    [][]byte // the other half of a double buffer, reused between flushes
	bytes    int
	pingDue  bool
	flushing bool
	closed   bool
	drained  chan<- struct{}
}

// New returns an outbox writing to w.
func New(w Writer, opts Options) *Outbox {
	if opts.MaxBatchBytes <= 0 {
		opts.MaxBatchBytes = 256 << 10
	}
	return &Outbox{w: w, opts: opts}
}

// Enqueue queues frame, which must not be modified afterwards (fan-out shares
// one frame among all subscribers). It never blocks on the network.
func (o *Outbox) Enqueue(frame []byte) error {
	o.mu.Lock()
	if o.closed {
		o.mu.Unlock()
		return ErrClosed
	}
	if o.opts.MaxQueueBytes > 0 && o.bytes+len(frame) > o.opts.MaxQueueBytes {
		o.closed = true
		o.queue = nil
		o.mu.Unlock()
		if o.opts.OnOverflow != nil {
			go o.opts.OnOverflow()
		}
		return ErrOverflow
	}
	o.queue = append(o.queue, frame)
	o.bytes += len(frame)
	start := !o.flushing
	o.flushing = true
	o.mu.Unlock()
	if start {
		go o.flush()
	}
	return nil
}

// Ping asks for a WebSocket ping to be written with the next flush.
func (o *Outbox) Ping() {
	o.mu.Lock()
	if o.closed {
		o.mu.Unlock()
		return
	}
	o.pingDue = true
	start := !o.flushing
	o.flushing = true
	o.mu.Unlock()
	if start {
		go o.flush()
	}
}

// Close drops whatever is queued and refuses further frames.
func (o *Outbox) Close() {
	o.mu.Lock()
	o.closed = true
	o.queue = nil
	o.bytes = 0
	o.mu.Unlock()
}

// Drain closes the outbox once what is queued has been written, and
// reports on done when that happened (or failed).
func (o *Outbox) Drain(done chan<- struct{}) {
	o.mu.Lock()
	if o.flushing {
		o.closed = true
		o.drained = done
		o.mu.Unlock()
		return
	}
	o.closed = true
	o.mu.Unlock()
	close(done)
}

// Queued reports the bytes waiting to be written.
func (o *Outbox) Queued() int {
	o.mu.Lock()
	defer o.mu.Unlock()
	return o.bytes
}

func (o *Outbox) flush() {
	for {
		o.mu.Lock()
		if len(o.queue) == 0 && !o.pingDue {
			o.flushing = false
			if cap(o.spare) > 64 {
				o.spare = nil // let a burst's big slice go once the connection is idle
			}
			if o.drained != nil {
				close(o.drained)
				o.drained = nil
			}
			o.mu.Unlock()
			return
		}
		batch := o.queue
		o.queue = o.spare[:0]
		o.spare = nil
		o.bytes = 0
		ping := o.pingDue
		o.pingDue = false
		o.mu.Unlock()

		err := o.write(batch, ping)
		clear(batch)
		o.mu.Lock()
		o.spare = batch[:0]
		if err != nil {
			o.closed = true
			o.queue = nil
			o.bytes = 0
		}
		o.mu.Unlock()
		if err != nil {
			if o.opts.OnWriteError != nil {
				o.opts.OnWriteError(err)
			}
			// Keep looping so the flushing flag and a pending Drain are settled.
		}
	}
}

func (o *Outbox) write(batch [][]byte, ping bool) error {
	if ping {
		if err := o.w.WritePing(); err != nil {
			return err
		}
	}
	for len(batch) > 0 {
		size := 0
		n := 0
		for n < len(batch) && (n == 0 || size+len(batch[n])+1 <= o.opts.MaxBatchBytes) {
			size += len(batch[n]) + 1
			n++
		}
		if err := o.w.WriteFrames(batch[:n]); err != nil {
			return err
		}
		batch = batch[n:]
	}
	return nil
}
