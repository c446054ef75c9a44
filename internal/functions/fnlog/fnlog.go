// Package fnlog keeps the recent log lines of each function: what it
// wrote with ctx.log and how it failed, in a bounded ring per function,
// merged across a cluster's nodes (each node relays its own lines to all,
// so every node's rings hold the whole cluster's), and streamed live to
// followers (GET /api/v1/functions/{name}/logs?follow=1).
package fnlog

import (
	"context"
	"encoding/json"
	"log/slog"
	"sort"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"golang.org/x/time/rate"

	"github.com/eddyrt/eddy/internal/broker"
)

// Topic is the cluster notification topic that carries log lines between
// nodes (node.Build routes it to Receive).
const Topic = "eddy.fnlog"

// Levels of a line.
const (
	LevelInfo  = "info"  // ctx.log
	LevelError = "error" // the function failed or timed out
)

// Bounds: the rings hold at most maxFunctions functions of Options.Lines
// lines of at most MaxMessageBytes each; a function adds at most lineRate
// lines per second per node (on top of ctx.log's own limits), a relay
// carries at most maxQueued lines, and a follower that does not keep up
// misses lines (counted) instead of holding anything up.
const (
	MaxMessageBytes = 2048
	maxFunctions    = 4096
	maxQueued       = 1024
	lineRate        = 50
	lineBurst       = 200
	followerBuffer  = 256
	MaxFollowers    = 256
	flushEvery      = 100 * time.Millisecond
	relayTimeout    = 2 * time.Second
)

// Line is one log line, as the logs endpoint returns it and streams it.
type Line struct {
	Time    string `json:"time"` // RFC 3339, UTC
	Level   string `json:"level"`
	Message string `json:"message"`
	Node    string `json:"node"`
}

// relayLine is a line on its way to the other nodes.
type relayLine struct {
	Function string `json:"function"`
	Line
}

// Options configure a Store; NodeID and Lines are required.
type Options struct {
	NodeID string
	Lines  int // per function (function_log_lines)
	// Notifier, when set, relays lines to every node; nil keeps them here.
	Notifier   broker.Notifier
	Logger     *slog.Logger
	Registerer prometheus.Registerer
}

// Store holds the rings. Safe for concurrent use.
type Store struct {
	opts    Options
	log     *slog.Logger
	dropped *prometheus.CounterVec

	mu        sync.Mutex
	rings     map[string]*ring
	followers map[string]map[*Follower]struct{}
	nfollow   int

	qmu   sync.Mutex
	queue []relayLine
}

// ring is one function's recent lines, oldest first from start.
type ring struct {
	lines []Line
	start int
	limit *rate.Limiter // this node's lines of the function
}

// Follower receives a function's new lines as they come.
type Follower struct {
	C chan Line
}

// New returns a store; with a Notifier, Run relays what Add gathers.
func New(opts Options) *Store {
	if opts.Logger == nil {
		opts.Logger = slog.Default()
	}
	if opts.Lines < 1 {
		opts.Lines = 1
	}
	s := &Store{
		opts:      opts,
		log:       opts.Logger.With("component", "function-logs"),
		rings:     map[string]*ring{},
		followers: map[string]map[*Follower]struct{}{},
		dropped: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "eddy_function_log_lines_dropped_total",
			Help: "Function log lines not kept or not streamed, by reason: rate (over 50 lines per second of one function on one node), functions (more than 4096 functions have lines), queue and relay (the cluster relay was full or failed), slow_follower (a follower did not keep up).",
		}, []string{"reason"}),
	}
	for _, r := range []string{"rate", "functions", "queue", "relay", "slow_follower"} {
		s.dropped.WithLabelValues(r)
	}
	if opts.Registerer != nil {
		opts.Registerer.MustRegister(s.dropped)
	}
	return s
}

// Add records a line of function on this node. It never blocks.
func (s *Store) Add(function, level, message string) {
	if s == nil {
		return
	}
	l := relayLine{Function: function, Line: Line{
		Time: time.Now().UTC().Format(time.RFC3339Nano), Level: level,
		Message: clip(message), Node: s.opts.NodeID,
	}}
	s.mu.Lock()
	r := s.ringLocked(function)
	if r == nil {
		s.mu.Unlock()
		s.dropped.WithLabelValues("functions").Inc()
		return
	}
	if !r.limit.Allow() {
		s.mu.Unlock()
		s.dropped.WithLabelValues("rate").Inc()
		return
	}
	// Kept here at once, so a node cut off from the cluster still shows
	// its own lines; the relay takes them to the others.
	s.insertLocked(function, r, l.Line)
	s.mu.Unlock()
	if s.opts.Notifier == nil {
		return
	}
	s.qmu.Lock()
	defer s.qmu.Unlock()
	if len(s.queue) >= maxQueued {
		s.dropped.WithLabelValues("queue").Inc()
		return
	}
	s.queue = append(s.queue, l)
}

// ringLocked returns function's ring, made if need be; nil when there are
// maxFunctions already. s.mu held.
func (s *Store) ringLocked(function string) *ring {
	r := s.rings[function]
	if r == nil {
		if len(s.rings) >= maxFunctions {
			return nil
		}
		r = &ring{lines: make([]Line, 0, min(s.opts.Lines, 64)), limit: rate.NewLimiter(lineRate, lineBurst)}
		s.rings[function] = r
	}
	return r
}

// insertLocked keeps l in r and hands it to the function's followers;
// s.mu held.
func (s *Store) insertLocked(function string, r *ring, l Line) {
	if len(r.lines) < s.opts.Lines {
		r.lines = append(r.lines, l)
	} else {
		r.lines[r.start] = l
		r.start = (r.start + 1) % len(r.lines)
	}
	for f := range s.followers[function] {
		select {
		case f.C <- l:
		default:
			s.dropped.WithLabelValues("slow_follower").Inc()
		}
	}
}

// recentLocked is function's lines in time order; s.mu held.
func (s *Store) recentLocked(function string) []Line {
	r := s.rings[function]
	if r == nil {
		return []Line{}
	}
	out := make([]Line, 0, len(r.lines))
	out = append(out, r.lines[r.start:]...)
	out = append(out, r.lines[:r.start]...)
	// Lines of several nodes arrive in relay order; the times say when
	// each was written (RFC 3339 in UTC with nanoseconds sorts as text
	// once the fraction's trailing zeros are accounted for: compare times).
	sort.SliceStable(out, func(i, j int) bool { return lineTime(out[i]).Before(lineTime(out[j])) })
	return out
}

func lineTime(l Line) time.Time {
	t, _ := time.Parse(time.RFC3339Nano, l.Time)
	return t
}

// Recent returns function's kept lines, oldest first.
func (s *Store) Recent(function string) []Line {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.recentLocked(function)
}

// Follow returns function's kept lines and a follower that gets every
// line after them; stop ends it. ok is false when MaxFollowers follow.
func (s *Store) Follow(function string) (recent []Line, f *Follower, stop func(), ok bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.nfollow >= MaxFollowers {
		return nil, nil, nil, false
	}
	f = &Follower{C: make(chan Line, followerBuffer)}
	set := s.followers[function]
	if set == nil {
		set = map[*Follower]struct{}{}
		s.followers[function] = set
	}
	set[f] = struct{}{}
	s.nfollow++
	var once sync.Once
	stop = func() {
		once.Do(func() {
			s.mu.Lock()
			defer s.mu.Unlock()
			delete(s.followers[function], f)
			if len(s.followers[function]) == 0 {
				delete(s.followers, function)
			}
			s.nfollow--
		})
	}
	return s.recentLocked(function), f, stop, true
}

// Receive takes lines relayed by the nodes of the cluster; this node's own
// come back too and are skipped.
func (s *Store) Receive(payload []byte) {
	var lines []relayLine
	if err := json.Unmarshal(payload, &lines); err != nil {
		s.log.Debug("malformed function log relay", "err", err)
		return
	}
	if len(lines) > maxQueued {
		lines = lines[:maxQueued]
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, l := range lines {
		if l.Node == s.opts.NodeID {
			continue // kept when it was added
		}
		l.Message = clip(l.Message)
		if r := s.ringLocked(l.Function); r != nil {
			s.insertLocked(l.Function, r, l.Line)
		}
	}
}

// Run relays the lines Add gathered every flushEvery until stop is
// closed. Without a Notifier there is nothing to relay and it returns.
func (s *Store) Run(stop <-chan struct{}) {
	if s.opts.Notifier == nil {
		return
	}
	t := time.NewTicker(flushEvery)
	defer t.Stop()
	for {
		select {
		case <-stop:
			s.flush() // the last lines, often the reason it stops
			return
		case <-t.C:
			s.flush()
		}
	}
}

func (s *Store) flush() {
	s.qmu.Lock()
	q := s.queue
	s.queue = nil
	s.qmu.Unlock()
	if len(q) == 0 {
		return
	}
	payload, err := json.Marshal(q)
	if err != nil {
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), relayTimeout)
	defer cancel()
	if err := s.opts.Notifier.Notify(ctx, Topic, payload); err != nil {
		s.dropped.WithLabelValues("relay").Add(float64(len(q)))
		s.log.Debug("relay function log lines", "lines", len(q), "err", err)
	}
}

// clip bounds a message at MaxMessageBytes, on a rune boundary.
func clip(s string) string {
	if len(s) <= MaxMessageBytes {
		return s
	}
	i := MaxMessageBytes
	for i > 0 && s[i]&0xC0 == 0x80 {
		i--
	}
	return s[:i] + "..."
}
