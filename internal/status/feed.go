package status

import (
	"context"
	"encoding/json"
	"log/slog"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"golang.org/x/time/rate"

	"github.com/eddyrt/eddy/internal/broker"
	"github.com/eddyrt/eddy/internal/protocol"
)

// Topic is the cluster notification topic that carries status relays
// between nodes (node.Build routes it to Receive).
const Topic = "eddy.status"

// Bounds. The feed never makes its callers wait and never grows: events
// past maxQueued before a flush are dropped and counted, a relay carries
// at most maxRelay events, and a subscriber whose outgoing queue is over
// half full misses events (counted) instead of being disconnected.
const (
	maxQueued     = 1024
	maxRelay      = 1024
	flushEvery    = 100 * time.Millisecond
	relayTimeout  = 2 * time.Second
	listenEvery   = 5 * time.Second // a node with subscribers says so this often
	listenFor     = 3 * listenEvery // and the others relay to it for this long
	defaultNodeAt = 5 * time.Second
	// unlistedGrace, in registry reads (a third of node_ttl each), is how
	// long a node that said it joined may be missing from the registry.
	unlistedGrace = 6
)

// Subscriber is a local status subscriber (a connection).
type Subscriber interface {
	// Deliver queues frames without blocking, or reports false when the
	// subscriber has no room: the frames are then dropped for it alone.
	Deliver(frames [][]byte) bool
}

// Options configure a Feed; NodeID and Rate are required.
type Options struct {
	NodeID string
	// Rate is status_sample_rate: events of one kind per second this node
	// sends; the rest are counted in an events_omitted event.
	Rate int
	// Notifier, when set, relays events to every node (Receive gets them);
	// nil keeps the feed to this node.
	Notifier broker.Notifier
	// Nodes, when set, is read every NodeEvery to notice nodes that joined
	// or whose announcements expired (a node that died without a word).
	Nodes     broker.NodeRegistry
	NodeEvery time.Duration
	Logger    *slog.Logger
	// Registerer receives the feed's metrics; nil keeps them unregistered.
	Registerer prometheus.Registerer
}

// Feed gathers a node's status events and hands them, with the cluster's,
// to the node's status subscribers. Safe for concurrent use.
type Feed struct {
	opts    Options
	log     *slog.Logger
	epoch   string
	dropped *prometheus.CounterVec
	omitted *prometheus.CounterVec

	sampleMu sync.Mutex
	buckets  map[bucketKey]*rate.Limiter
	left     map[string]map[string]int64 // per app, per kind: omitted since the last events_omitted

	qmu    sync.Mutex
	queue  []Event
	closed bool

	// listenUntil is when the last "someone listens" notice from another
	// node runs out (unix nanoseconds): until then events are relayed.
	listenUntil atomic.Int64
	nsubs       atomic.Int32

	// mu guards the numbering (each app's events numbered on their own),
	// delivery, the subscribers (each with the app whose events it gets)
	// and the node view.
	mu     sync.Mutex
	offset map[string]uint64
	subs   map[Subscriber]string
	known  map[string]bool // nodes seen alive
	gone   map[string]bool // nodes that said they left, still in the registry
	// unlisted are nodes that said they joined but were not yet seen in
	// the registry, with when: their first announcement may be on the
	// way, so they are not taken for dead until unlistedGrace has passed.
	unlisted map[string]time.Time
	seeded   bool // known holds the registry's first answer
}

// relay is what one node sends the others under Topic.
type relay struct {
	Listen bool    `json:"listen,omitempty"` // the sender has status subscribers
	Events []Event `json:"events,omitempty"`
}

// New returns a feed; Run sends what it gathers.
func New(opts Options) *Feed {
	if opts.Logger == nil {
		opts.Logger = slog.Default()
	}
	if opts.Rate < 1 {
		opts.Rate = 1
	}
	if opts.NodeEvery <= 0 {
		opts.NodeEvery = defaultNodeAt
	}
	f := &Feed{
		opts:     opts,
		log:      opts.Logger.With("component", "status"),
		epoch:    "status-" + strconv.FormatInt(time.Now().UnixNano(), 36),
		buckets:  map[bucketKey]*rate.Limiter{},
		left:     map[string]map[string]int64{},
		offset:   map[string]uint64{},
		subs:     map[Subscriber]string{},
		known:    map[string]bool{opts.NodeID: true},
		gone:     map[string]bool{},
		unlisted: map[string]time.Time{},
		dropped: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "eddy_status_events_dropped_total",
			Help: "Status events ($admin:status) dropped, by reason: queue (more than the node gathers between two flushes), relay (the cluster relay failed), slow_subscriber (counted once per subscriber that missed them).",
		}, []string{"reason"}),
		omitted: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "eddy_status_events_omitted_total",
			Help: "Status events left out because status_sample_rate was reached, by event type (subscribers get the counts in events_omitted).",
		}, []string{"type"}),
	}
	for _, r := range []string{"queue", "relay", "slow_subscriber"} {
		f.dropped.WithLabelValues(r)
	}
	for _, k := range []string{ConnectionOpened, ConnectionClosed, Subscribed, Unsubscribed, FunctionError, FunctionTimeout, LimitRefused} {
		f.omitted.WithLabelValues(k) // present at 0, so alerts can rate() it
	}
	if opts.Registerer != nil {
		opts.Registerer.MustRegister(f.dropped, f.omitted)
	}
	return f
}

// listening reports whether an event could reach a subscriber: one here,
// or one on another node that said so lately.
func (f *Feed) listening() bool {
	return f.nsubs.Load() > 0 || (f.opts.Notifier != nil && time.Now().UnixNano() < f.listenUntil.Load())
}

// Emit adds an event of this node. It never blocks: an event nobody can
// see is not kept, one past the sample rate is only counted.
func (f *Feed) Emit(e Event) {
	if f == nil || (sampled(e.Type) && !f.listening()) {
		return
	}
	if sampled(e.Type) && !f.allow(e.App, e.Type) {
		return
	}
	if e.Node == "" {
		e.Node = f.opts.NodeID
	}
	e.Time = stamp(time.Now())
	e.Error, e.Message, e.Reason = clip(e.Error), clip(e.Message), clip(e.Reason)
	f.qmu.Lock()
	if f.closed || len(f.queue) >= maxQueued {
		f.qmu.Unlock()
		f.dropped.WithLabelValues("queue").Inc()
		return
	}
	f.queue = append(f.queue, e)
	f.qmu.Unlock()
}

// bucketKey names a sample bucket: each app's events of a kind have their
// own, so one busy app does not crowd the others' events out.
type bucketKey struct{ app, kind string }

// allow takes a token of the bucket of app's kind, or counts the event as
// omitted. Buckets of apps that were deleted stay until the node stops:
// a few bytes each.
func (f *Feed) allow(app, kind string) bool {
	f.sampleMu.Lock()
	defer f.sampleMu.Unlock()
	k := bucketKey{app, kind}
	b := f.buckets[k]
	if b == nil {
		b = rate.NewLimiter(rate.Limit(f.opts.Rate), f.opts.Rate)
		f.buckets[k] = b
	}
	if b.Allow() {
		return true
	}
	if f.left[app] == nil {
		f.left[app] = map[string]int64{}
	}
	f.left[app][kind]++
	f.omitted.WithLabelValues(kind).Inc()
	return false
}

// takeOmitted returns the omitted counts since the last call, one
// events_omitted event per app that had some.
func (f *Feed) takeOmitted() []Event {
	f.sampleMu.Lock()
	defer f.sampleMu.Unlock()
	if len(f.left) == 0 {
		return nil
	}
	now := stamp(time.Now())
	out := make([]Event, 0, len(f.left))
	for app, counts := range f.left {
		out = append(out, Event{Type: EventsOmitted, Node: f.opts.NodeID, Time: now, Omitted: counts, App: app})
	}
	f.left = map[string]map[string]int64{}
	return out
}

// Subscribe adds s and calls reply with the feed's position, before any
// event reaches s (the subscribed reply goes first). The returned func
// removes s; calling it again does nothing. s gets the default app's
// events and the node events.
func (f *Feed) Subscribe(s Subscriber, reply func(epoch string, offset uint64)) (cancel func()) {
	return f.SubscribeApp(s, "", reply)
}

// SubscribeApp is Subscribe for the events of app only ("" the default
// app, which also gets the node events: node_joined, node_left).
func (f *Feed) SubscribeApp(s Subscriber, app string, reply func(epoch string, offset uint64)) (cancel func()) {
	f.mu.Lock()
	reply(f.epoch, f.offset[app])
	f.subs[s] = app
	f.nsubs.Store(int32(len(f.subs)))
	f.mu.Unlock()
	var once sync.Once
	return func() {
		once.Do(func() {
			f.mu.Lock()
			delete(f.subs, s)
			f.nsubs.Store(int32(len(f.subs)))
			f.mu.Unlock()
		})
	}
}

// Receive takes a relay from a node of the cluster;
// node.Build routes Topic's notifications here. A malformed one is
// ignored: it can only come from a node of another version.
func (f *Feed) Receive(payload []byte) {
	var r relay
	if err := json.Unmarshal(payload, &r); err != nil {
		f.log.Debug("malformed status relay", "err", err)
		return
	}
	if r.Listen {
		f.listenUntil.Store(time.Now().Add(listenFor).UnixNano())
	}
	if len(r.Events) > maxRelay {
		r.Events = r.Events[:maxRelay]
	}
	// This node's own events come back too: they were delivered here
	// when they were sent.
	events := r.Events[:0]
	for _, e := range r.Events {
		if e.Node != f.opts.NodeID {
			events = append(events, e)
		}
	}
	if len(events) > 0 {
		f.deliver(events)
	}
}

// deliver numbers events and hands them to every local subscriber of
// their app, each app's numbered on its own. Node events update the node
// view first, so that a node's join or leave reaches a subscriber once,
// whether the node said so or the registry.
func (f *Feed) deliver(events []Event) {
	f.mu.Lock()
	defer f.mu.Unlock()
	byApp := map[string][][]byte{}
	now := time.Now().UnixMilli()
	for _, e := range events {
		if !f.noteNodeLocked(e) {
			continue
		}
		data, err := json.Marshal(e)
		if err != nil {
			continue // plain strings and numbers; cannot fail
		}
		f.offset[e.App]++
		off := f.offset[e.App]
		id := "s-" + f.opts.NodeID + "-" + strconv.FormatUint(off, 36)
		if e.App != "" {
			id = "s-" + f.opts.NodeID + "-" + e.App + "-" + strconv.FormatUint(off, 36)
		}
		byApp[e.App] = append(byApp[e.App], protocol.AppendMessage(nil, &protocol.Message{
			Channel: protocol.StatusChannel, Event: e.Type, Data: data,
			ID: id, TS: now, Offset: off, Epoch: f.epoch,
		}))
	}
	for s, app := range f.subs {
		frames := byApp[app]
		if len(frames) == 0 {
			continue
		}
		if !s.Deliver(frames) {
			f.dropped.WithLabelValues("slow_subscriber").Add(float64(len(frames)))
		}
	}
}

// noteNodeLocked updates the node view with e and reports whether e is
// news; f.mu held.
func (f *Feed) noteNodeLocked(e Event) bool {
	switch e.Type {
	case NodeJoined:
		if f.known[e.Node] && !f.gone[e.Node] {
			return false
		}
		f.known[e.Node] = true
		delete(f.gone, e.Node)
		if e.Node != f.opts.NodeID {
			f.unlisted[e.Node] = time.Now()
		}
	case NodeLeft:
		if !f.known[e.Node] {
			return false
		}
		delete(f.known, e.Node)
		delete(f.unlisted, e.Node)
		f.gone[e.Node] = true
	}
	return true
}

// Run sends the gathered events every flushEvery until stop is closed,
// then tells the cluster this node leaves. Call it once.
func (f *Feed) Run(stop <-chan struct{}) {
	t := time.NewTicker(flushEvery)
	defer t.Stop()
	f.qmu.Lock()
	f.closed = false // a server restarted on the same feed
	f.qmu.Unlock()
	f.announce(NodeJoined)
	var lastListen, lastOmitted, lastNodes time.Time
	for {
		select {
		case <-stop:
			f.qmu.Lock()
			f.closed = true
			f.queue = nil
			f.qmu.Unlock()
			f.send(relay{Events: []Event{{Type: NodeLeft, Node: f.opts.NodeID, Time: stamp(time.Now())}}})
			return
		case now := <-t.C:
			var r relay
			if f.opts.Notifier != nil && f.nsubs.Load() > 0 && now.Sub(lastListen) >= listenEvery {
				r.Listen, lastListen = true, now
			}
			if now.Sub(lastOmitted) >= time.Second {
				lastOmitted = now
				if evs := f.takeOmitted(); len(evs) > 0 {
					f.qmu.Lock()
					f.queue = append(f.queue, evs...)
					f.qmu.Unlock()
				}
			}
			f.qmu.Lock()
			r.Events, f.queue = f.queue, nil
			f.qmu.Unlock()
			if r.Listen || len(r.Events) > 0 {
				f.send(r)
			}
			if f.opts.Nodes != nil && now.Sub(lastNodes) >= f.opts.NodeEvery {
				lastNodes = now
				f.checkNodes()
			}
		}
	}
}

// announce tells every node (this one too) that this node joined or left.
func (f *Feed) announce(kind string) {
	f.send(relay{Events: []Event{{Type: kind, Node: f.opts.NodeID, Time: stamp(time.Now())}}})
}

// send delivers r's events here and relays r to the other nodes: this
// node's subscribers get its events even while the relay is down.
func (f *Feed) send(r relay) {
	if len(r.Events) > 0 {
		f.deliver(r.Events)
	}
	if f.opts.Notifier == nil {
		return
	}
	payload, err := json.Marshal(r)
	if err != nil {
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), relayTimeout)
	defer cancel()
	if err := f.opts.Notifier.Notify(ctx, Topic, payload); err != nil {
		f.dropped.WithLabelValues("relay").Add(float64(len(r.Events)))
		f.log.Debug("relay status events", "events", len(r.Events), "err", err)
	}
}

// checkNodes reads the node registry and tells this node's subscribers of
// nodes that appeared in it or expired from it (a node that died without
// a word). Only this node's subscribers: every node reads the same
// registry, so relaying would tell each subscriber once per node.
func (f *Feed) checkNodes() {
	ctx, cancel := context.WithTimeout(context.Background(), relayTimeout)
	nodes, err := f.opts.Nodes.Nodes(ctx)
	cancel()
	if err != nil {
		f.log.Debug("read node registry", "err", err)
		return
	}
	live := make(map[string]bool, len(nodes))
	for _, n := range nodes {
		live[n.ID] = true
	}
	f.mu.Lock()
	var events []Event
	now := stamp(time.Now())
	for id := range live {
		delete(f.unlisted, id)
		if !f.known[id] && !f.gone[id] && f.seeded {
			events = append(events, Event{Type: NodeJoined, Node: id, Time: now})
		}
		if !f.seeded {
			f.known[id] = true
		}
	}
	grace := unlistedGrace * f.opts.NodeEvery
	for id := range f.known {
		if live[id] || id == f.opts.NodeID || !f.seeded {
			continue
		}
		if since, ok := f.unlisted[id]; ok && time.Since(since) < grace {
			continue // joined, not announced yet
		}
		events = append(events, Event{Type: NodeLeft, Node: id, Time: now})
	}
	for id := range f.gone {
		if !live[id] {
			delete(f.gone, id) // expired at last: a later announcement is a new join
		}
	}
	f.seeded = true
	f.mu.Unlock()
	if len(events) > 0 {
		f.deliver(events)
	}
}
