package server

// EnqueueToAll queues frame on every open connection, as fan-out would:
// tests use it to hand the writers a frame no entry check would let in.
func EnqueueToAll(s *Server, frame []byte) {
	s.conns.each(func(c *conn) { _ = c.out.Enqueue(frame) })
}
