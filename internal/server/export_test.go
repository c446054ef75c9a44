package server

import "time"

// WithWriteDelay sets a coalescing window beyond write_delay's limit, for
// tests that must tell "waited for the window" from "did not" by order.
func WithWriteDelay(o Options, d time.Duration) Options {
	o.writeDelay = d
	return o
}

// EnqueueToAll queues frame on every open connection, as fan-out would:
// tests use it to hand the writers a frame no entry check would let in.
func EnqueueToAll(s *Server, frame []byte) {
	s.conns.each(func(c *conn) { _ = c.out.Enqueue(frame) })
}
