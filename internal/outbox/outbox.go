// Package outbox is a connection's bounded outgoing queue: frames are
// appended without blocking and leave in batched writes, made by a shared
// Pool of writers (without one, by a goroutine that exists only while there
// is something to write); an idle connection has no goroutine waiting. A
// busy connection writes at most once per FlushDelay, so that under load
// many frames share one write system call (the cost of fan-out), while the
// first frame after a quiet spell leaves at once.
package outbox

import (
	"errors"
	"sync"
	"time"

	"github.com/eddyrt/eddy/internal/protocol"
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
	// FlushDelay is the coalescing window: a flush that would start less
	// than FlushDelay after the previous write waits for the window to end,
	// and what was queued meanwhile leaves in one write. 0 writes at once.
	FlushDelay time.Duration
	// Writers, when set, is the pool of goroutines that writes (shared by
	// a server's connections); nil: a goroutine of its own per burst.
	Writers *Pool
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
	flushing bool // a flush goroutine runs or its timer is armed
	closed   bool
	drained  chan<- struct{}

	lastWrite int64       // unix nanoseconds of the last write, for FlushDelay
	timer     *time.Timer // runs flush after a coalescing wait; made on first need
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
	if !o.flushing {
		o.flushing = true
		o.startLocked()
	}
	o.mu.Unlock()
	return nil
}

// startLocked starts a flush now, or when the coalescing window of the
// previous write ends; o.mu held, o.flushing just set.
func (o *Outbox) startLocked() {
	if !o.deferLocked() {
		o.dispatch()
	}
}

// dispatch hands the outbox to a writer.
func (o *Outbox) dispatch() {
	if o.opts.Writers != nil {
		o.opts.Writers.submit(o)
		return
	}
	go func() {
		for o.step() {
		}
	}()
}

// deferLocked arms the timer when the coalescing window of the previous
// write is still open, and reports whether it did; o.mu held.
func (o *Outbox) deferLocked() bool {
	d := o.opts.FlushDelay
	if d <= 0 || o.lastWrite == 0 {
		return false
	}
	wait := time.Duration(o.lastWrite + int64(d) - time.Now().UnixNano())
	if wait <= 0 {
		return false
	}
	if o.timer == nil {
		o.timer = time.AfterFunc(wait, o.dispatch)
	} else {
		o.timer.Reset(wait)
	}
	return true
}

// Ping asks for a WebSocket ping to be written with the next flush.
func (o *Outbox) Ping() {
	o.mu.Lock()
	if o.closed {
		o.mu.Unlock()
		return
	}
	o.pingDue = true
	if !o.flushing {
		o.flushing = true
		o.startLocked()
	}
	o.mu.Unlock()
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

// step writes what is queued, once. It returns true when the outbox wants
// another step right away (more is queued, or an error or a drain is to be
// settled); false when it is idle or its timer will dispatch it again.
func (o *Outbox) step() bool {
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
		return false
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
	if o.opts.FlushDelay > 0 {
		o.lastWrite = time.Now().UnixNano()
	}
	if err != nil {
		o.closed = true
		o.queue = nil
		o.bytes = 0
	}
	if err == nil && (len(o.queue) > 0 || o.pingDue) && o.drained == nil && o.deferLocked() {
		// More arrived during the write: let it gather until the window ends.
		o.mu.Unlock()
		return false
	}
	o.mu.Unlock()
	if err != nil && o.opts.OnWriteError != nil {
		o.opts.OnWriteError(err)
	}
	// Step again, so the flushing flag and a pending Drain are settled.
	return true
}

func (o *Outbox) write(batch [][]byte, ping bool) error {
	if ping {
		if err := o.w.WritePing(); err != nil {
			return err
		}
	}
	for len(batch) > 0 {
		n := protocol.BatchLen(batch, o.opts.MaxBatchBytes)
		if err := o.w.WriteFrames(batch[:n]); err != nil {
			return err
		}
		batch = batch[n:]
	}
	return nil
}
