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
// A write blocks while its peer's socket buffer is full (up to the
// transport's write deadline). So that such writes cannot hold the others
// back, a watchdog adds a writer whenever outboxes waited stuckAfter with
// no write finishing; extra writers leave when the queue is empty.
type Pool struct {
	size       int
	stuckAfter time.Duration

	mu       sync.Mutex
	queue    []*Outbox // waiting for a writer, oldest first from head
	head     int
	running  int
	progress uint64 // steps finished, for the watchdog
	seen     uint64
	watching bool
}

// NewPool returns a pool of up to size writers (more only while writes are stuck).
func NewPool(size int, stuckAfter time.Duration) *Pool {
	return &Pool{size: max(size, 1), stuckAfter: stuckAfter}
}

func (p *Pool) submit(o *Outbox) {
	p.mu.Lock()
	if p.running < p.size {
		p.running++
		p.mu.Unlock()
		go p.work(o)
		return
	}
	p.queue = append(p.queue, o)
	if !p.watching {
		p.watching = true
		p.seen = p.progress
		time.AfterFunc(p.stuckAfter, p.watch)
	}
	p.mu.Unlock()
}

func (p *Pool) work(o *Outbox) {
	for {
		again := o.step()
		p.mu.Lock()
		p.progress++
		if again {
			p.queue = append(p.queue, o) // to the back: every connection gets its turn
		}
		o = p.popLocked()
		if o == nil {
			p.running--
			p.mu.Unlock()
			return
		}
		p.mu.Unlock()
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
// outboxes wait.
func (p *Pool) watch() {
	p.mu.Lock()
	if p.head == len(p.queue) {
		p.watching = false
		p.mu.Unlock()
		return
	}
	var o *Outbox
	if p.progress == p.seen {
		o = p.popLocked()
		p.running++
	}
	p.seen = p.progress
	p.mu.Unlock()
	if o != nil {
		go p.work(o)
	}
	time.AfterFunc(p.stuckAfter, p.watch)
}
