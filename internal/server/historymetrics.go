package server

import (
	"github.com/prometheus/client_golang/prometheus"

	"github.com/eddyrt/eddy/internal/broker/memory"
)

// historyStater is a broker that counts the history it keeps in this
// process (the memory broker; Redis keeps history in Redis).
type historyStater interface{ Stats() memory.HistoryStats }

// registerHistoryMetrics exports what the node's in-process history
// costs, and how often max_history_bytes evicted a channel's history.
func (s *Server) registerHistoryMetrics() {
	h, ok := s.broker.(historyStater)
	if !ok {
		return
	}
	s.metrics.registry.MustRegister(
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{
			Name: "eddy_history_bytes", Help: "Bytes of history the in-memory broker keeps (bounded by max_history_bytes).",
		}, func() float64 { return float64(h.Stats().Bytes) }),
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{
			Name: "eddy_history_channels", Help: "Channels whose history the in-memory broker keeps.",
		}, func() float64 { return float64(h.Stats().WithHistory) }),
		prometheus.NewCounterFunc(prometheus.CounterOpts{
			Name: "eddy_history_evicted_total", Help: "Channels whose whole history was evicted to stay within max_history_bytes, oldest publish first.",
		}, func() float64 { return float64(h.Stats().Evicted) }),
	)
}
