// Package outbox is a connection's bounded outgoing queue: frames are
// appended without blocking and leave in batched writes, made by a shared
// Pool of writers (without one, by a goroutine that exists only while there
// is something to write); an idle connection has no goroutine waiting. A
// busy connection writes at most once per FlushDelay, so that under load
// many frames share one write system call (the cost of fan-out), while the
// first frame after a quiet spell leaves at once. A reply to the client's
// own request (PushReply) never waits for that window: it leaves at once,
// with whatever was queued before it.
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

// Backlogger is implemented by a Writer whose writes never block on a full
// socket (see Socket): what the socket could not take stays in the writer,
// which writes it on its own. The outbox then writes nothing more until
// that backlog is gone, so no shared writer waits on one socket, and
// counts the backlog against MaxQueueBytes.
type Backlogger interface {
	// Backlog is how many bytes were accepted and are not on the socket yet.
	Backlog() int
	// WhenWritten arranges for f to run once the backlog is written (or the
	// socket failed) and reports true; false, with f never run, when there
	// is no backlog.
	WhenWritten(f func()) bool
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
	bl   Backlogger // w, when its writes never block
	opts Options
	// fullBatch is how many queued bytes end the coalescing wait early.
	fullBatch int

	mu       sync.Mutex
	queue    [][]byte
	spare    [][]byte // the other half of a double buffer, reused between flushes
	bytes    int
	pingDue  bool
	flushing bool // a flush goroutine runs or its timer is armed
	armed    bool // the timer is armed and no writer has the outbox
	urgent   bool // a reply is queued: the next flush does not wait for the window
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
	bl, _ := w.(Backlogger)
	full := opts.MaxBatchBytes
	if opts.MaxQueueBytes > 0 {
		full = min(full, opts.MaxQueueBytes/4)
	}
	return &Outbox{w: w, bl: bl, opts: opts, fullBatch: full}
}

// Enqueue queues a pushed frame, which must not be modified afterwards
// (fan-out shares one frame among all subscribers). It never blocks on the
// network; on a busy connection it waits for the coalescing window.
func (o *Outbox) Enqueue(frame []byte) error { return o.enqueue(frame, false) }

// PushReply queues a reply to the client's own request (ready, subscribed,
// ack, pong, error...). Unlike Enqueue it does not wait for the coalescing
// window: the reply leaves with the next write, at once, together with and
// after whatever was queued before it, so a client's request round trip
// never pays the window. A write already in progress is not interrupted;
// the reply follows it right away.
func (o *Outbox) PushReply(frame []byte) error { return o.enqueue(frame, true) }

func (o *Outbox) enqueue(frame []byte, urgent bool) error {
	o.mu.Lock()
	if o.closed {
		o.mu.Unlock()
		return ErrClosed
	}
	if o.opts.MaxQueueBytes > 0 && o.bytes+len(frame)+o.backlog() > o.opts.MaxQueueBytes {
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
	switch {
	case !o.flushing:
		o.flushing = true
		if urgent {
			o.dispatch()
		} else {
			o.startLocked()
		}
	case urgent || o.bytes >= o.fullBatch:
		// A reply, or a batch as big as waiting can make it: no reason
		// to wait for the window (and a fast stream must not fill the
		// queue within one window).
		o.urgent = true
		if o.armed && o.timer.Stop() {
			// The window's timer will not run: flush now instead.
			o.armed = false
			o.dispatch()
		}
		// Otherwise a writer has the outbox (it checks urgent before
		// waiting for the window), the timer is already firing, or the
		// socket holds a backlog (it dispatches when written).
	}
	o.mu.Unlock()
	return nil
}

// backlog is what the writer holds that is not on the socket yet.
func (o *Outbox) backlog() int {
	if o.bl == nil {
		return 0
	}
	return o.bl.Backlog()
}

// fire ends a coalescing wait: the timer's function.
func (o *Outbox) fire() {
	o.mu.Lock()
	o.armed = false
	o.mu.Unlock()
	o.dispatch()
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
		o.timer = time.AfterFunc(wait, o.fire)
	} else {
		o.timer.Reset(wait)
	}
	o.armed = true
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
		o.idleLocked()
		o.mu.Unlock()
		return false
	}
	// Backlog first: it is an atomic load, and most steps find none, so
	// WhenWritten (a lock, and a method value made for it) is left out.
	if o.bl != nil && o.bl.Backlog() > 0 && o.bl.WhenWritten(o.dispatch) {
		// The socket still holds bytes its peer has not read: write nothing
		// more, and let the writer go; the socket dispatches the outbox
		// again once they are written. Meanwhile the queue grows, up to
		// MaxQueueBytes.
		o.mu.Unlock()
		return false
	}
	batch := o.queue
	o.queue = o.spare[:0]
	o.spare = nil
	o.bytes = 0
	ping := o.pingDue
	o.pingDue = false
	o.urgent = false
	o.mu.Unlock()

	rest, err := o.write(batch, ping)
	var requeue [][]byte
	requeueBytes := 0
	if len(rest) > 0 && err == nil {
		requeue = append(make([][]byte, 0, len(rest)), rest...)
		for _, f := range rest {
			requeueBytes += len(f)
		}
	}
	clear(batch)
	o.mu.Lock()
	o.spare = batch[:0]
	if requeue != nil && !o.closed {
		// The socket stopped taking bytes: what was not written goes back
		// to the head of the queue, shared frames and all, instead of
		// being copied into the socket's remainder.
		o.queue = append(requeue, o.queue...)
		o.bytes += requeueBytes
	}
	if o.opts.FlushDelay > 0 {
		o.lastWrite = time.Now().UnixNano()
	}
	if err != nil {
		o.closed = true
		o.queue = nil
		o.bytes = 0
	}
	if err == nil && (len(o.queue) > 0 || o.pingDue) && o.drained == nil && !o.urgent && o.bytes < o.fullBatch && o.deferLocked() {
		// More arrived during the write: let it gather until the window ends
		// (unless a reply is among it).
		o.mu.Unlock()
		return false
	}
	if err == nil && len(o.queue) == 0 && !o.pingDue {
		// Everything written: idle now, settled here rather than in another
		// step (which took the writer another trip through the pool's
		// queue for every delivery).
		o.idleLocked()
		o.mu.Unlock()
		return false
	}
	o.mu.Unlock()
	if err != nil && o.opts.OnWriteError != nil {
		o.opts.OnWriteError(err)
	}
	// Step again: more is queued, or the error is to be settled.
	return true
}

// idleLocked marks the outbox idle, with nothing queued: no writer has it
// until the next frame, and a pending Drain is over; o.mu held.
func (o *Outbox) idleLocked() {
	o.flushing = false
	if cap(o.spare) > 64 {
		o.spare = nil // let a burst's big slice go once the connection is idle
	}
	if o.drained != nil {
		close(o.drained)
		o.drained = nil
	}
}

// write writes batch (in several WebSocket messages when it is long) and
// returns what it did not write because the socket holds a backlog.
func (o *Outbox) write(batch [][]byte, ping bool) (rest [][]byte, err error) {
	if ping {
		if err := o.w.WritePing(); err != nil {
			return nil, err
		}
	}
	for len(batch) > 0 {
		n := protocol.BatchLen(batch, o.opts.MaxBatchBytes)
		if err := o.w.WriteFrames(batch[:n]); err != nil {
			return nil, err
		}
		batch = batch[n:]
		if len(batch) > 0 && o.bl != nil && o.bl.Backlog() > 0 {
			return batch, nil
		}
	}
	return nil, nil
}
