package server

import (
	"sync"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
)

// metrics are one server's Prometheus collectors, in a registry of its own
// so several servers can live in one process (tests, future multi-app).
type metrics struct {
	registry       *prometheus.Registry
	connections    prometheus.Gauge
	connects       prometheus.Counter
	messagesIn     *prometheus.CounterVec
	publishLatency prometheus.Histogram
	errors         *prometheus.CounterVec
	disconnects    *prometheus.CounterVec
	framesDropped  *prometheus.CounterVec

	// Labelled children looked up once: WithLabelValues hashes the labels
	// and takes a lock on every call, which a publish paid twice.
	publishedAPI, publishedClient prometheus.Counter
	errorsByCode                  sync.Map // code -> prometheus.Counter
}

// published is the publish counter of source ("api" or "client").
func (m *metrics) published(source string) prometheus.Counter {
	switch source {
	case "api":
		return m.publishedAPI
	case "client":
		return m.publishedClient
	}
	return m.messagesIn.WithLabelValues(source)
}

// errorsFor is the error counter of code.
func (m *metrics) errorsFor(code string) prometheus.Counter {
	if c, ok := m.errorsByCode.Load(code); ok {
		return c.(prometheus.Counter)
	}
	c := m.errors.WithLabelValues(code)
	m.errorsByCode.Store(code, c)
	return c
}

func newMetrics(s *Server) *metrics {
	r := s.opts.Registry
	if r == nil {
		r = prometheus.NewRegistry()
	}
	m := &metrics{
		registry: r,
		connections: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "eddy_connections", Help: "Open WebSocket connections.",
		}),
		connects: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "eddy_connects_total", Help: "WebSocket connections accepted.",
		}),
		messagesIn: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "eddy_messages_published_total", Help: "Messages published, by source (api or client).",
		}, []string{"source"}),
		publishLatency: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name:    "eddy_publish_duration_seconds",
			Help:    "Time from receiving a publish to handing it to the broker (functions included).",
			Buckets: prometheus.ExponentialBuckets(0.00001, 4, 10),
		}),
		errors: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "eddy_errors_total", Help: "Errors returned to clients and API callers, by code.",
		}, []string{"code"}),
		disconnects: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "eddy_disconnects_total", Help: "Connections closed by the server, by close code.",
		}, []string{"code"}),
		framesDropped: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "eddy_frames_dropped_total", Help: "Frames dropped at write time instead of closing the connection, by reason (invalid_utf8: no entry check should let one through).",
		}, []string{"reason"}),
	}
	m.publishedAPI = m.messagesIn.WithLabelValues("api")
	m.publishedClient = m.messagesIn.WithLabelValues("client")
	r.MustRegister(m.connections, m.connects, m.messagesIn, m.publishLatency, m.errors, m.disconnects, m.framesDropped,
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{
			Name: "eddy_subscriptions", Help: "Active subscriptions on this node.",
		}, func() float64 { return float64(s.hub.Stats().Subscriptions) }),
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{
			Name: "eddy_channels", Help: "Channels with local subscribers.",
		}, func() float64 { return float64(s.hub.Stats().Channels) }),
		prometheus.NewCounterFunc(prometheus.CounterOpts{
			Name: "eddy_messages_delivered_total", Help: "Messages handed to local subscribers.",
		}, func() float64 { return float64(s.hub.Stats().Delivered) }),
		collectors.NewGoCollector(),
		collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}),
	)
	return m
}
