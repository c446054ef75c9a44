package server

import (
	"context"
	"encoding/json"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"

	"github.com/eddyrt/eddy/api"
)

// The stats sampler turns the node's counters into per-second figures
// once a second, keeps the last minutes of them for the console's charts,
// and hands each second's api.Stats to the open stats streams
// (GET /api/v1/stats?follow=1). The costly parts (per-channel rates,
// functions, the cluster's nodes) run only while a stream is open.

const (
	statsEvery     = time.Second
	statsHistory   = 300 // points: five minutes
	statsBusiest   = 10
	maxStatsStream = 64 // open streams per node; one more is refused
)

type statsSampler struct {
	s *Server

	mu        sync.Mutex
	history   []api.StatsPoint // ring, oldest first once full
	inPerS    float64
	outPerS   float64
	prevIn    uint64
	prevOut   uint64
	prevAt    time.Time
	prevChan  map[string]uint64 // channel message counts at prevAt; nil while no stream is open
	chanRates map[string]float64
	streams   map[chan []byte]struct{}
}

func newStatsSampler(s *Server) *statsSampler {
	return &statsSampler{s: s, streams: make(map[chan []byte]struct{})}
}

func counterValue(c prometheus.Counter) uint64 {
	var m dto.Metric
	if err := c.Write(&m); err != nil {
		return 0
	}
	return uint64(m.GetCounter().GetValue())
}

func (st *statsSampler) messagesIn() uint64 {
	return counterValue(st.s.metrics.publishedAPI) + counterValue(st.s.metrics.publishedClient)
}

// loop samples every statsEvery until the server stops.
func (st *statsSampler) loop() {
	defer st.s.stopped.Done()
	t := time.NewTicker(statsEvery)
	defer t.Stop()
	st.mu.Lock()
	st.prevIn, st.prevOut, st.prevAt = st.messagesIn(), st.s.hub.Stats().Delivered, time.Now()
	st.mu.Unlock()
	for {
		select {
		case <-st.s.stop:
			st.closeStreams()
			return
		case now := <-t.C:
			st.sample(now)
		}
	}
}

func (st *statsSampler) sample(now time.Time) {
	in, hs := st.messagesIn(), st.s.hub.Stats()
	st.mu.Lock()
	secs := now.Sub(st.prevAt).Seconds()
	if secs <= 0 {
		secs = 1
	}
	st.inPerS = float64(in-st.prevIn) / secs
	st.outPerS = float64(hs.Delivered-st.prevOut) / secs
	st.prevIn, st.prevOut = in, hs.Delivered
	st.history = append(st.history, api.StatsPoint{
		TimeMS: now.UnixMilli(), Connections: st.s.conns.len(), Subscriptions: int(hs.Subscriptions),
		MessagesInPerS: st.inPerS, MessagesOutPerS: st.outPerS,
	})
	if len(st.history) > statsHistory {
		st.history = append(st.history[:0], st.history[len(st.history)-statsHistory:]...)
	}
	watched := len(st.streams) > 0
	if watched {
		counts := make(map[string]uint64, len(st.prevChan))
		st.s.hub.ChannelMessages(counts)
		rates := make(map[string]float64, len(counts))
		for ch, n := range counts {
			if old, ok := st.prevChan[ch]; ok && n >= old {
				rates[ch] = float64(n-old) / secs
			}
		}
		st.prevChan, st.chanRates = counts, rates
	} else {
		st.prevChan, st.chanRates = nil, nil
	}
	st.prevAt = now
	st.mu.Unlock()
	if !watched {
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), statsEvery)
	snap := st.snapshot(ctx, false)
	cancel()
	b, err := json.Marshal(snap)
	if err != nil {
		st.s.log.Error("stats stream: encode", "err", err)
		return
	}
	st.mu.Lock()
	for ch := range st.streams {
		select {
		case ch <- b:
		default: // a slow reader misses a second rather than holding the others up
		}
	}
	st.mu.Unlock()
}

// rates returns the node's last per-second rates.
func (st *statsSampler) rates() (in, out float64) {
	st.mu.Lock()
	defer st.mu.Unlock()
	return st.inPerS, st.outPerS
}

// channelRate is channel's last rate (0 while no stream is open).
func (st *statsSampler) channelRate(channel string) float64 {
	st.mu.Lock()
	defer st.mu.Unlock()
	return st.chanRates[channel]
}

// snapshot is the node's (and the cluster's) figures now; withHistory
// adds the last minutes of this node's points.
func (st *statsSampler) snapshot(ctx context.Context, withHistory bool) api.Stats {
	s := st.s
	hs := s.hub.Stats()
	self := api.NodeStats{NodeInfo: s.selfInfo(), Channels: int(hs.Channels), MessagesIn: st.messagesIn(), MessagesOut: hs.Delivered, Self: true}
	out := api.Stats{TimeMS: time.Now().UnixMilli(), Node: s.nodeID, Broker: api.BrokerStatus{Kind: s.brokerKind(), Ready: s.abil.Ready()}}
	out.Nodes = []api.NodeStats{self}
	if reg := s.abil.Nodes; reg != nil {
		if nodes, err := reg.Nodes(ctx); err == nil {
			for _, n := range nodes {
				if n.ID != s.nodeID {
					out.Nodes = append(out.Nodes, api.NodeStats{NodeInfo: n})
				}
			}
		} else {
			s.log.Debug("stats: list nodes", "err", err)
		}
	}
	st.mu.Lock()
	busy := make([]api.ChannelRate, 0, len(st.chanRates))
	for ch, r := range st.chanRates {
		busy = append(busy, api.ChannelRate{Channel: ch, Messages: st.prevChan[ch], PerS: r})
	}
	if withHistory {
		out.History = append(make([]api.StatsPoint, 0, len(st.history)), st.history...)
	}
	st.mu.Unlock()
	sort.Slice(busy, func(i, j int) bool {
		if busy[i].PerS != busy[j].PerS {
			return busy[i].PerS > busy[j].PerS
		}
		return busy[i].Channel < busy[j].Channel
	})
	if len(busy) > statsBusiest {
		busy = busy[:statsBusiest]
	}
	for i := range busy {
		busy[i].Subscribers = s.hub.Subscribers(busy[i].Channel)
	}
	out.Busiest = busy
	out.Functions = st.functionStats()
	return out
}

func (s *Server) brokerKind() string {
	switch {
	case s.cfg.UsesRedis():
		return "redis"
	case s.cfg.NATS != "":
		return "nats"
	}
	return "memory"
}

// functionStats reads the functions engine's counters from the shared
// registry: the server sees functions only as Middleware, and the
// registry is where the engine already counts them.
func (st *statsSampler) functionStats() []api.FunctionStats {
	mfs, err := st.s.metrics.registry.Gather()
	if err != nil {
		st.s.log.Debug("stats: gather metrics", "err", err)
	}
	byName := map[string]*api.FunctionStats{}
	get := func(m *dto.Metric) *api.FunctionStats {
		for _, l := range m.GetLabel() {
			if l.GetName() == "function" {
				f := byName[l.GetValue()]
				if f == nil {
					f = &api.FunctionStats{Name: l.GetValue()}
					byName[l.GetValue()] = f
				}
				return f
			}
		}
		return nil
	}
	for _, mf := range mfs {
		name := mf.GetName()
		if !strings.HasPrefix(name, "eddy_functions_") {
			continue
		}
		for _, m := range mf.GetMetric() {
			f := get(m)
			if f == nil {
				continue
			}
			v := uint64(m.GetCounter().GetValue())
			switch name {
			case "eddy_functions_invocations_total":
				f.Invocations = v
			case "eddy_functions_errors_total":
				f.Errors = v
			case "eddy_functions_timeouts_total":
				f.Timeouts = v
			case "eddy_functions_rejections_total":
				f.Rejections = v
			case "eddy_functions_duration_seconds":
				if h := m.GetHistogram(); h.GetSampleCount() > 0 {
					f.AvgMS = h.GetSampleSum() / float64(h.GetSampleCount()) * 1000
				}
			}
		}
	}
	out := make([]api.FunctionStats, 0, len(byName))
	for _, f := range byName {
		out = append(out, *f)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Name < out[j].Name })
	return out
}

// subscribe opens a stream; false when maxStatsStream are open already.
func (st *statsSampler) subscribe() (chan []byte, bool) {
	st.mu.Lock()
	defer st.mu.Unlock()
	if len(st.streams) >= maxStatsStream {
		return nil, false
	}
	ch := make(chan []byte, 2)
	st.streams[ch] = struct{}{}
	return ch, true
}

func (st *statsSampler) unsubscribe(ch chan []byte) {
	st.mu.Lock()
	defer st.mu.Unlock()
	delete(st.streams, ch)
}

// closeStreams ends every stream: the server is stopping.
func (st *statsSampler) closeStreams() {
	st.mu.Lock()
	defer st.mu.Unlock()
	for ch := range st.streams {
		close(ch)
		delete(st.streams, ch)
	}
}
