package status

import (
	"context"
	"encoding/json"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"

	"github.com/eddyrt/eddy/api"
)

// sink is a Subscriber that records frames, or refuses them all (full).
type sink struct {
	mu     sync.Mutex
	frames [][]byte
	full   bool
}

func (s *sink) Deliver(frames [][]byte) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.full {
		return false
	}
	s.frames = append(s.frames, frames...)
	return true
}

// events decodes what s received: each frame is a message whose data is an event.
func (s *sink) events(t *testing.T) []Event {
	t.Helper()
	s.mu.Lock()
	defer s.mu.Unlock()
	var out []Event
	var last uint64
	for _, f := range s.frames {
		var m api.Message
		if err := json.Unmarshal(f, &m); err != nil {
			t.Fatalf("frame %s: %v", f, err)
		}
		var e Event
		if err := json.Unmarshal(m.Data, &e); err != nil || e.Type != m.Event || m.Channel != "$admin:status" {
			t.Fatalf("frame %s: event %+v, %v", f, e, err)
		}
		if m.Offset <= last {
			t.Fatalf("offset %d after %d", m.Offset, last)
		}
		last = m.Offset
		out = append(out, e)
	}
	return out
}

func eventually(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

func run(t *testing.T, f *Feed) {
	stop := make(chan struct{})
	done := make(chan struct{})
	go func() { defer close(done); f.Run(stop) }()
	t.Cleanup(func() { close(stop); <-done })
}

// A subscriber without room misses events, counted; the others get them.
func TestFeedDropsForTheSlowSubscriberOnly(t *testing.T) {
	f := New(Options{NodeID: "n1", Rate: 1000})
	fast, slow := &sink{}, &sink{full: true}
	f.Subscribe(fast, func(string, uint64) {})
	f.Subscribe(slow, func(string, uint64) {})
	run(t, f)
	for i := 0; i < 10; i++ {
		f.Emit(Event{Type: Subscribed, Channel: "c"})
	}
	eventually(t, "10 events delivered", func() bool { return len(fast.events(t)) == 10 })
	if got := counterValue(f.dropped.WithLabelValues("slow_subscriber")); got != 10 {
		t.Fatalf("dropped for the slow subscriber: %g, want 10", got)
	}
}

// Past the rate, events are counted, and events_omitted says how many.
func TestFeedSamplesAndCountsTheRest(t *testing.T) {
	f := New(Options{NodeID: "n1", Rate: 5})
	s := &sink{}
	f.Subscribe(s, func(string, uint64) {})
	run(t, f)
	for i := 0; i < 100; i++ {
		f.Emit(Event{Type: ConnectionOpened, User: "u"})
	}
	f.Emit(Event{Type: FunctionError, Function: "f"}) // another kind has its own bucket
	eventually(t, "events_omitted", func() bool {
		for _, e := range s.events(t) {
			if e.Type == EventsOmitted {
				return true
			}
		}
		return false
	})
	var opened, fnErrs int64
	var omitted int64
	for _, e := range s.events(t) {
		switch e.Type {
		case ConnectionOpened:
			opened++
		case FunctionError:
			fnErrs++
		case EventsOmitted:
			omitted += e.Omitted[ConnectionOpened]
		}
	}
	if opened < 5 || opened > 10 || opened+omitted != 100 || fnErrs != 1 {
		t.Fatalf("%d sent + %d omitted of 100 connection_opened (want 5-10 sent, all counted); %d function_error", opened, omitted, fnErrs)
	}
}

// Nobody subscribed: nothing is queued, nothing counted.
func TestFeedIdleWithoutSubscribers(t *testing.T) {
	f := New(Options{NodeID: "n1", Rate: 1})
	for i := 0; i < 10; i++ {
		f.Emit(Event{Type: ConnectionOpened})
	}
	f.qmu.Lock()
	n := len(f.queue)
	f.qmu.Unlock()
	if n != 0 || counterValue(f.omitted.WithLabelValues(ConnectionOpened)) != 0 {
		t.Fatalf("without subscribers: %d queued, %g omitted", n, counterValue(f.omitted.WithLabelValues(ConnectionOpened)))
	}
}

// registry is a NodeRegistry whose node list the test sets.
type registry struct {
	mu    sync.Mutex
	nodes []string
}

func (r *registry) set(ids ...string) { r.mu.Lock(); r.nodes = ids; r.mu.Unlock() }

func (r *registry) Announce(context.Context, api.NodeInfo) error { return nil }

func (r *registry) Nodes(context.Context) ([]api.NodeInfo, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	var out []api.NodeInfo
	for _, id := range r.nodes {
		out = append(out, api.NodeInfo{ID: id})
	}
	return out, nil
}

// A node's join and leave reach a subscriber once, whether the node said
// so (a relay) or the registry showed it, in either order.
func TestFeedNodeEventsOnce(t *testing.T) {
	reg := &registry{}
	reg.set("n1", "n2")
	f := New(Options{NodeID: "n1", Rate: 10, Nodes: reg, NodeEvery: 10 * time.Millisecond})
	s := &sink{}
	f.Subscribe(s, func(string, uint64) {})
	f.checkNodes() // the first look is the baseline: n2 was there
	count := func(kind, node string) int {
		n := 0
		for _, e := range s.events(t) {
			if e.Type == kind && e.Node == node {
				n++
			}
		}
		return n
	}
	relay := func(kind, node string) {
		b, _ := json.Marshal(relay{Events: []Event{{Type: kind, Node: node}}})
		f.Receive(b)
	}
	relay(NodeJoined, "n3") // n3 says it joined, then shows in the registry
	reg.set("n1", "n2", "n3")
	f.checkNodes()
	relay(NodeLeft, "n3") // n3 says it left; the registry still lists it a while
	f.checkNodes()
	reg.set("n1", "n2")
	f.checkNodes()
	reg.set("n1") // n2 dies without a word: its entry expires
	f.checkNodes()
	f.checkNodes()
	if count(NodeJoined, "n3") != 1 || count(NodeLeft, "n3") != 1 || count(NodeLeft, "n2") != 1 || count(NodeJoined, "n2") != 0 || count(NodeLeft, "n1") != 0 {
		t.Fatalf("node events: %+v", s.events(t))
	}
	// n4 says it joined before its first announcement reached the
	// registry: not dead yet; only once the grace has passed unlisted.
	relay(NodeJoined, "n4")
	f.checkNodes()
	if count(NodeLeft, "n4") != 0 {
		t.Fatalf("a node that just joined, not yet in the registry, taken for dead: %+v", s.events(t))
	}
	f.mu.Lock()
	f.unlisted["n4"] = time.Now().Add(-time.Hour)
	f.mu.Unlock()
	f.checkNodes()
	f.checkNodes()
	if count(NodeJoined, "n4") != 1 || count(NodeLeft, "n4") != 1 {
		t.Fatalf("n4 never listed: %+v", s.events(t))
	}
}

func counterValue(c prometheus.Counter) float64 {
	var m dto.Metric
	_ = c.Write(&m)
	return m.GetCounter().GetValue()
}
