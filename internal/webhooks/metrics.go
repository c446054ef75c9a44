package webhooks

import "github.com/prometheus/client_golang/prometheus"

// Outcomes of events, the outcome label of eddy_webhook_events_total.
const (
	outcomeSent             = "sent"
	outcomeQueueFull        = "dropped_queue_full"
	outcomeRetriesExhausted = "dropped_retries_exhausted"
	outcomeShutdown         = "dropped_shutdown"
)

type metrics struct {
	events   *prometheus.CounterVec
	requests *prometheus.CounterVec
	queued   prometheus.Gauge
}

func newMetrics(reg prometheus.Registerer) *metrics {
	m := &metrics{
		events: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "eddy_webhook_events_total",
			Help: "Webhook events by outcome: sent, or dropped (queue full, retries exhausted, shutdown), counted per receiver.",
		}, []string{"outcome"}),
		requests: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "eddy_webhook_requests_total",
			Help: "Webhook POSTs by result: the answer's status class (2xx, 4xx, 5xx, ...) or error (no answer).",
		}, []string{"result"}),
		queued: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "eddy_webhook_queued_events",
			Help: "Webhook events waiting to be sent, all receivers together.",
		}),
	}
	// Present at 0, so alerts can rate() them.
	for _, o := range []string{outcomeSent, outcomeQueueFull, outcomeRetriesExhausted, outcomeShutdown} {
		m.events.WithLabelValues(o)
	}
	for _, r := range []string{"2xx", "4xx", "5xx", "error"} {
		m.requests.WithLabelValues(r)
	}
	if reg != nil {
		reg.MustRegister(m.events, m.requests, m.queued)
	}
	return m
}

func (m *metrics) sent(n int)                    { m.events.WithLabelValues(outcomeSent).Add(float64(n)) }
func (m *metrics) dropped(outcome string, n int) { m.events.WithLabelValues(outcome).Add(float64(n)) }
func (m *metrics) request(result string)         { m.requests.WithLabelValues(result).Inc() }
