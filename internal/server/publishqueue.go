package server

import (
	"sync"

	"github.com/eddyrt/eddy/internal/auth"
	"github.com/eddyrt/eddy/internal/protocol"
)

// maxQueuedPublishes bounds a connection's publishes waiting for their
// turn; past it a publish is refused with rate_limited. publish_rate keeps
// a well-behaved client far below it.
const maxQueuedPublishes = 256

// publishQueue runs one connection's publishes in order on a goroutine of
// their own, started when the first one arrives and gone when the queue is
// empty. A publish can take a function's whole time budget or wait on the
// broker; run on the frame handler, it held up every later frame of the
// connection, pings included. Now the reader moves on: pings, subscribes
// and presence requests are answered while publishes run, and acks still
// come in publish order.
type publishQueue struct {
	mu      sync.Mutex // a leaf: nothing is called with it held
	q       []queuedPublish
	running bool
	done    sync.WaitGroup // the worker, while running
}

type queuedPublish struct {
	f  *protocol.ClientFrame
	id *auth.Identity
}

// enqueue adds a publish for c's worker, starting it if needed, or reports
// that too many wait.
func (c *conn) enqueuePublish(f *protocol.ClientFrame, id *auth.Identity) bool {
	p := &c.pubs
	p.mu.Lock()
	defer p.mu.Unlock()
	if len(p.q) >= maxQueuedPublishes {
		return false
	}
	p.q = append(p.q, queuedPublish{f: f, id: id})
	if !p.running {
		p.running = true
		p.done.Add(1)
		go c.publishLoop()
	}
	return true
}

// publishLoop publishes what is queued, in order, until the queue is
// empty. Once the connection is closing, what still waits is dropped: it
// was never acknowledged, so the client does not count on it.
func (c *conn) publishLoop() {
	p := &c.pubs
	defer p.done.Done()
	for {
		p.mu.Lock()
		if len(p.q) == 0 || c.closing() {
			p.q, p.running = nil, false
			p.mu.Unlock()
			return
		}
		next := p.q[0]
		p.q[0] = queuedPublish{}
		p.q = p.q[1:]
		p.mu.Unlock()
		c.doPublish(c.ctx, next.f, next.id)
	}
}

// waitPublishes returns when no publish of c runs any more; teardown calls
// it after the context was cancelled, which cuts the one in flight short.
func (c *conn) waitPublishes() { c.pubs.done.Wait() }
