package server

import (
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/eddyrt/eddy/api"
)

// appList is every app of the node, the default one first.
func (s *Server) appList() []*appState {
	m := *s.apps.byID.Load()
	out := make([]*appState, 0, len(m)+1)
	out = append(out, s.apps.def)
	for _, a := range m {
		out = append(out, a)
	}
	return out
}

// rate is the app's publishes per second since the previous call that
// was at least a second ago (info is read every few seconds: the announce
// loop, or an operator).
func (a *appState) rateNow(now time.Time) float64 {
	a.rateMu.Lock()
	defer a.rateMu.Unlock()
	n := a.published.Load()
	if el := now.Sub(a.rateAt); el >= time.Second {
		if !a.rateAt.IsZero() {
			a.lastRate = float64(n-a.rateN) / el.Seconds()
		}
		a.rateAt, a.rateN = now, n
	}
	return a.lastRate
}

// appInfos are the node's per-app figures, for GET /api/v1/info.
func (s *Server) appInfos() *[]api.AppInfo {
	now := time.Now()
	list := s.appList()
	out := make([]api.AppInfo, 0, len(list))
	for _, a := range list {
		out = append(out, api.AppInfo{ID: a.id, Connections: int(a.conns.Load()),
			Subscriptions: int(a.hub.Stats().Subscriptions), Published: a.published.Load(), PublishRate: a.rateNow(now)})
	}
	return &out
}

// infoFor keeps only the requesting app's figures in each node's entry:
// an app never learns another's name or load.
func infoFor(nodes []api.NodeInfo, app string) []api.NodeInfo {
	out := make([]api.NodeInfo, len(nodes))
	for i, n := range nodes {
		out[i] = n
		out[i].Apps = nil
		if n.Apps == nil {
			continue
		}
		for _, a := range *n.Apps {
			if a.ID == app {
				out[i].Apps = &[]api.AppInfo{a}
			}
		}
	}
	return out
}

// appCollector exports the per-app metrics at scrape time. The app label
// is bounded: apps are made by operators, not by clients.
type appCollector struct {
	s                        *Server
	conns, subs, publishedTo *prometheus.Desc
}

func newAppCollector(s *Server) *appCollector {
	return &appCollector{s: s,
		conns:       prometheus.NewDesc("eddy_app_connections", "Authenticated connections of each app on this node.", []string{"app"}, nil),
		subs:        prometheus.NewDesc("eddy_app_subscriptions", "Subscriptions of each app on this node.", []string{"app"}, nil),
		publishedTo: prometheus.NewDesc("eddy_app_messages_published_total", "Messages published by each app through this node (API and clients).", []string{"app"}, nil),
	}
}

func (c *appCollector) Describe(ch chan<- *prometheus.Desc) {
	ch <- c.conns
	ch <- c.subs
	ch <- c.publishedTo
}

func (c *appCollector) Collect(ch chan<- prometheus.Metric) {
	for _, a := range c.s.appList() {
		ch <- prometheus.MustNewConstMetric(c.conns, prometheus.GaugeValue, float64(a.conns.Load()), a.id)
		ch <- prometheus.MustNewConstMetric(c.subs, prometheus.GaugeValue, float64(a.hub.Stats().Subscriptions), a.id)
		ch <- prometheus.MustNewConstMetric(c.publishedTo, prometheus.CounterValue, float64(a.published.Load()), a.id)
	}
}

// registerAppMetrics adds the per-app metrics to the server's registry.
func (s *Server) registerAppMetrics() {
	if err := s.metrics.registry.Register(newAppCollector(s)); err != nil {
		s.log.Warn("per-app metrics not registered", "err", err)
	}
}
