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
// A write blocks while its peer's socket buffer is full (up to the
// transport's write deadline). So that such writes cannot hold the others
// back, a watchdog adds a writer whenever outboxes waited stuckAfter with
// no write finishing; such extra writers leave when the queue is empty.
type Pool struct {
	size       int
	stuckAfter time.Duration

	mu       sync.Mutex
	wake     sync.Cond // parked writers wait on it for work
	queue    []*Outbox // waiting for a writer, oldest first from head
	head     int
	running  int    // writers alive, parked ones included
	parked   int    // writers waiting on wake
	progress uint64 // steps finished, for the watchdog
	seen     uint64
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

func (p *Pool) submit(o *Outbox) {
	p.mu.Lock()
	p.queue = append(p.queue, o)
	switch {
	case p.parked > 0:
		// A parked writer takes it (or one already woken, which drains the
		// whole queue before parking again).
		p.wake.Signal()
	case p.running < p.size:
		p.running++
		go p.work()
	case !p.watching:
		p.watching = true
		p.seen = p.progress
		time.AfterFunc(p.stuckAfter, p.watch)
	}
	p.mu.Unlock()
}

func (p *Pool) work() {
	p.mu.Lock()
	for {
		o := p.popLocked()
		if o == nil {
			if p.closed || p.running > p.size {
				// Closed, or an extra writer the watchdog added: leave.
				p.running--
				p.mu.Unlock()
				return
			}
			p.parked++
			p.wake.Wait()
			p.parked--
			continue
		}
		p.mu.Unlock()
		again := o.step()
		p.mu.Lock()
		p.progress++
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

// watch adds a writer when nothing finished since the last look while
// outboxes wait and no writer is parked.
func (p *Pool) watch() {
	p.mu.Lock()
	if p.head == len(p.queue) {
		p.watching = false
		p.mu.Unlock()
		return
	}
	if p.progress == p.seen && p.parked == 0 {
		p.running++
		go p.work()
	}
	p.seen = p.progress
	p.mu.Unlock()
	time.AfterFunc(p.stuckAfter, p.watch)
}
