package functions

import (
	"errors"

	"github.com/prometheus/client_golang/prometheus"
)

// metrics are the engine's Prometheus collectors, labelled by function.
type metrics struct {
	invocations *prometheus.CounterVec
	failures    *prometheus.CounterVec
	timeouts    *prometheus.CounterVec
	rejections  *prometheus.CounterVec
	latency     *prometheus.HistogramVec
	dropped     *prometheus.CounterVec // emitted messages refused, by reason
	limits      *prometheus.CounterVec
	unavailable *prometheus.CounterVec
	logDropped  *prometheus.CounterVec
	invalid     *prometheus.CounterVec
	loadErrors  prometheus.Counter
	// sourceLimits counts deploys refused by the source bounds
	// (transpile.ErrLimit): the function never ran, so no function label.
	sourceLimits prometheus.Counter
}

// fnMetrics caches one function's children so the hot path does no label
// lookups.
type fnMetrics struct {
	invocations, failures, timeouts, rejections prometheus.Counter
	limits, unavailable, logDropped             prometheus.Counter
	invalidOutput                               prometheus.Counter
	latency                                     prometheus.Observer
}

func newMetrics(reg prometheus.Registerer) *metrics {
	m := &metrics{
		invocations: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: "eddy", Subsystem: "functions", Name: "invocations_total",
			Help: "Function invocations.",
		}, []string{"function"}),
		failures: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: "eddy", Subsystem: "functions", Name: "errors_total",
			Help: "Function failures (timeouts, crashes, bad output, endpoint errors), handled by on_error.",
		}, []string{"function"}),
		timeouts: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: "eddy", Subsystem: "functions", Name: "timeouts_total",
			Help: "Function invocations stopped by their timeout (also counted in errors_total).",
		}, []string{"function"}),
		rejections: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: "eddy", Subsystem: "functions", Name: "rejections_total",
			Help: "Messages refused by a function.",
		}, []string{"function"}),
		latency: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Namespace: "eddy", Subsystem: "functions", Name: "duration_seconds",
			Help:    "Function invocation latency.",
			Buckets: prometheus.ExponentialBuckets(0.00005, 4, 9),
		}, []string{"function"}),
		dropped: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: "eddy", Subsystem: "functions", Name: "emitted_dropped_total",
			Help: "Messages emitted with ctx.publish that were dropped (reason: depth, limit).",
		}, []string{"reason"}),
		limits: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: "eddy", Subsystem: "functions", Name: "resource_limits_total",
			Help: "Function invocations stopped for exceeding their memory budget (also counted in errors_total).",
		}, []string{"function"}),
		unavailable: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: "eddy", Subsystem: "functions", Name: "unavailable_total",
			Help: "Publishes refused because no VM of the function came free in time (the function did not run).",
		}, []string{"function"}),
		logDropped: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: "eddy", Subsystem: "functions", Name: "log_dropped_total",
			Help: "ctx.log lines dropped by the per-invocation cap or the per-function rate limit.",
		}, []string{"function"}),
		invalid: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: "eddy", Subsystem: "functions", Name: "invalid_output_total",
			Help: "Function invocations whose output data was invalid (also counted in errors_total).",
		}, []string{"function"}),
		loadErrors: prometheus.NewCounter(prometheus.CounterOpts{
			Namespace: "eddy", Subsystem: "functions", Name: "load_errors_total",
			Help: "Stored functions or associations skipped at load because they are unreadable or invalid.",
		}),
		sourceLimits: prometheus.NewCounter(prometheus.CounterOpts{
			Namespace: "eddy", Subsystem: "functions", Name: "source_limits_total",
			Help: "Deploys (or stored functions at load) refused for a source past the bounds: size, bracket nesting, transpilation time.",
		}),
	}
	if reg != nil {
		m.sourceLimits = register(reg, m.sourceLimits)
		m.invocations = register(reg, m.invocations)
		m.failures = register(reg, m.failures)
		m.timeouts = register(reg, m.timeouts)
		m.rejections = register(reg, m.rejections)
		m.latency = register(reg, m.latency)
		m.dropped = register(reg, m.dropped)
		m.limits = register(reg, m.limits)
		m.unavailable = register(reg, m.unavailable)
		m.logDropped = register(reg, m.logDropped)
		m.loadErrors = register(reg, m.loadErrors)
		m.invalid = register(reg, m.invalid)
	}
	return m
}

// register registers c, or returns the collector already registered under
// the same name (an engine re-created with the same registry).
func register[C prometheus.Collector](reg prometheus.Registerer, c C) C {
	if err := reg.Register(c); err != nil {
		var are prometheus.AlreadyRegisteredError
		if errors.As(err, &are) {
			if existing, ok := are.ExistingCollector.(C); ok {
				return existing
			}
		}
	}
	return c
}

func (m *metrics) forFunction(name string) *fnMetrics {
	return &fnMetrics{
		invocations:   m.invocations.WithLabelValues(name),
		failures:      m.failures.WithLabelValues(name),
		timeouts:      m.timeouts.WithLabelValues(name),
		rejections:    m.rejections.WithLabelValues(name),
		limits:        m.limits.WithLabelValues(name),
		unavailable:   m.unavailable.WithLabelValues(name),
		logDropped:    m.logDropped.WithLabelValues(name),
		invalidOutput: m.invalid.WithLabelValues(name),
		latency:       m.latency.WithLabelValues(name),
	}
}

func (m *metrics) forget(name string) {
	m.invocations.DeleteLabelValues(name)
	m.failures.DeleteLabelValues(name)
	m.timeouts.DeleteLabelValues(name)
	m.rejections.DeleteLabelValues(name)
	m.latency.DeleteLabelValues(name)
	m.limits.DeleteLabelValues(name)
	m.unavailable.DeleteLabelValues(name)
	m.logDropped.DeleteLabelValues(name)
	m.invalid.DeleteLabelValues(name)
}
