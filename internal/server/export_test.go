package server

import (
	"fmt"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/eddyrt/eddy/internal/readpoll"
)

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

// Connects is the server's eddy_connects_total and Closes its
// eddy_disconnects_total for one close code, read without a Gather of the
// whole registry: the drain tests sample them every 100 ms on a busy machine.
func Connects(s *Server) float64 { return counterOf(s.metrics.connects) }

func Closes(s *Server, code string) float64 {
	return counterOf(s.metrics.disconnects.WithLabelValues(code))
}

// counterOf gathers c alone, through a registry of its own.
func counterOf(c prometheus.Counter) float64 {
	r := prometheus.NewRegistry()
	r.MustRegister(c)
	families, err := r.Gather()
	if err != nil || len(families) != 1 {
		panic(fmt.Sprintf("gather one counter: %v", err))
	}
	return families[0].GetMetric()[0].GetCounter().GetValue()
}

// FastRequests counts the requests the API fast path served.
func FastRequests(s *Server) int64 { return s.fastRequests.Load() }

// ConnCount is how many connections the server holds open.
func ConnCount(s *Server) int { return s.conns.len() }

// PolledSockets is how many sockets the process's epoll set holds
// (wsread.go): every server of the process shares it.
func PolledSockets() int { return readpoll.Watched() }

// SetReadDeadlines sets the read deadline of every open WebSocket
// connection, as teardown does after its close frame.
func SetReadDeadlines(s *Server, t time.Time) {
	s.conns.each(func(c *conn) {
		if c.socket != nil {
			_ = c.socket.SetReadDeadline(t)
		}
	})
}
