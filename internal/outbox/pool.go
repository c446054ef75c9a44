package outbox

import (
	"sync"
	"time"
)

// Pool is a set of writer goroutines shared by many outboxes. Fan-out to
// many connections then queues outboxes, not goroutines: the goroutine that
// publishes keeps its share of the CPU, and whatever a connection receives
// while its outbox waits for a writer joins the same write, so under load
// batches grow instead of the scheduler's run queue.
//
// Up to size writers stay once started, parked while there is nothing to
// write: a writer started afresh for each burst paid for a new goroutine
// and for growing its stack again to the depth of a socket write, about a
// tenth of a single publish's CPU (bench/README.md, issue 14).
//
// A write over a Socket never blocks, so size need not be more than the
// cores: more writers than cores only take turns on them, and each takes
// an outbox off the queue sooner, with fewer frames joined in its write.
// Other writes (SSE streams, connections without a Socket) block while
// the peer's buffer is full, up to the transport's write deadline. So that
// such writes cannot hold the others back, a watchdog adds a writer
// whenever outboxes wait while a writer has been in one step for
// stuckAfter, as many as there are such writers: size is the number of
// writers that make progress. Extra writers leave when the queue is empty.
type Pool struct {
	size       int
	stuckAfter time.Duration

	mu       sync.Mutex
	wake     sync.Cond // parked writers wait on it for work
	queue    []*Outbox // waiting for a writer, oldest first from head
	head     int
	running  int       // writers alive, parked ones included
	parked   int       // writers waiting on wake
	writers  []*writer // every running writer, for the watchdog
	watching bool
	closed   bool
}

// NewPool returns a pool of up to size writers (more only while writes are stuck).
func NewPool(size int, stuckAfter time.Duration) *Pool {
	p := &Pool{size: max(size, 1), stuckAfter: stuckAfter}
	p.wake.L = &p.mu
	return p
}

// Close lets the parked writers go once the queue is empty. Outboxes
// submitted afterwards still get written, by writers that leave when done.
func (p *Pool) Close() {
	p.mu.Lock()
	p.closed = true
	p.wake.Broadcast()
	p.mu.Unlock()
}

// writer is one writer goroutine's state, for the watchdog; p.mu guards it.
type writer struct {
	steps    uint64 // steps finished
	busy     bool   // in a step now
	seen     uint64 // steps at the watchdog's last look
	seenBusy bool   // busy at the watchdog's last look
}

func (p *Pool) submit(o *Outbox) {
	p.mu.Lock()
	p.queue = append(p.queue, o)
	switch {
	case p.parked > 0:
		// A parked writer takes it (or one already woken, which drains the
		// whole queue before parking again).
		p.wake.Signal()
	case p.running < p.size:
		p.startLocked()
	case !p.watching:
		p.watching = true
		p.lookLocked()
		time.AfterFunc(p.stuckAfter, p.watch)
	}
	p.mu.Unlock()
}

// startLocked starts a writer; p.mu held.
func (p *Pool) startLocked() {
	w := &writer{}
	p.writers = append(p.writers, w)
	p.running++
	go p.work(w)
}

func (p *Pool) work(w *writer) {
	p.mu.Lock()
	for {
		o := p.popLocked()
		if o == nil {
			if p.closed || p.running > p.size {
				// Closed, or an extra writer the watchdog added: leave.
				p.running--
				for i, x := range p.writers {
					if x == w {
						p.writers = append(p.writers[:i], p.writers[i+1:]...)
						break
					}
				}
				p.mu.Unlock()
				return
			}
			p.parked++
			p.wake.Wait()
			p.parked--
			continue
		}
		w.busy = true
		p.mu.Unlock()
		again := o.step()
		p.mu.Lock()
		w.busy = false
		w.steps++
		if again {
			p.queue = append(p.queue, o) // to the back: every connection gets its turn
		}
	}
}

// popLocked takes the oldest waiting outbox, nil when none waits; p.mu held.
func (p *Pool) popLocked() *Outbox {
	if p.head == len(p.queue) {
		if cap(p.queue) > 1024 {
			p.queue = nil // let a burst's long queue go
		} else {
			p.queue = p.queue[:0]
		}
		p.head = 0
		return nil
	}
	o := p.queue[p.head]
	p.queue[p.head] = nil
	p.head++
	return o
}

// watch is the watchdog: it looks every stuckAfter while outboxes wait.
func (p *Pool) watch() {
	if p.tick() {
		time.AfterFunc(p.stuckAfter, p.watch)
	}
}

// tick is one look of the watchdog, reporting whether to look again: it
// adds a writer when outboxes wait, no writer is parked and fewer than
// size writers made progress since the last look (a writer busy then and
// now, in the same step, is stuck in a blocking write).
func (p *Pool) tick() bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.head == len(p.queue) {
		p.watching = false
		return false
	}
	stuck := p.lookLocked()
	if p.parked == 0 && p.running-stuck < p.size {
		p.startLocked()
	}
	return true
}

// lookLocked counts the writers that have been in one step since the
// previous look, and records what they do now for the next; p.mu held.
func (p *Pool) lookLocked() (stuck int) {
	for _, w := range p.writers {
		if w.busy && w.seenBusy && w.steps == w.seen {
			stuck++
		}
		w.seen, w.seenBusy = w.steps, w.busy
	}
	return stuck
}
