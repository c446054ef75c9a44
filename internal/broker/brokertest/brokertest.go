// Package brokertest is the broker contract as tests: every Broker (memory,
// Redis, and any future one) runs Run unchanged from its own tests, so the
// promises broker.go makes are checked the same way for all of them.
package brokertest

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/eddyrt/eddy/internal/broker"
	"github.com/eddyrt/eddy/internal/protocol"
)

// Factory returns a new, not yet started broker on an empty backing store
// of its own (or one whose channels no other broker of the run uses). The
// caller of Run closes nothing: the factory registers the cleanup.
type Factory func(t *testing.T) broker.Broker

// Run runs the contract tests against brokers made by newBroker.
func Run(t *testing.T, newBroker Factory) {
	tests := []struct {
		name string
		fn   func(*testing.T, Factory)
	}{
		{"OrderingPerChannel", testOrdering},
		{"ContiguousOffsetsUnderConcurrentPublishers", testConcurrentPublishers},
		{"HistoryLimit", testHistoryLimit},
		{"HistoryTTL", testHistoryTTL},
		{"Epochs", testEpochs},
		{"Presence", testPresence},
		{"PresenceEventsReachSubscribedNodes", testPresenceEvents},
		{"SubscribeUnsubscribeRaces", testSubscribeRaces},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) { tc.fn(t, newBroker) })
	}
}

// recorder is the Handler the suite starts brokers with.
type recorder struct {
	t      *testing.T
	mu     sync.Mutex
	msgs   map[string][]*protocol.Message
	events []*protocol.PresenceEvent
}

func (r *recorder) HandleMessage(m *protocol.Message) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.msgs[m.Channel] = append(r.msgs[m.Channel], m)
}

func (r *recorder) HandlePresence(ev *protocol.PresenceEvent) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.events = append(r.events, ev)
}

func (r *recorder) messages(channel string) []*protocol.Message {
	r.mu.Lock()
	defer r.mu.Unlock()
	return slices.Clone(r.msgs[channel])
}

func (r *recorder) presence() []*protocol.PresenceEvent {
	r.mu.Lock()
	defer r.mu.Unlock()
	return slices.Clone(r.events)
}

// start makes a broker, starts it with a recorder and waits until it is ready.
func start(t *testing.T, newBroker Factory) (broker.Broker, *recorder) {
	t.Helper()
	b := newBroker(t)
	rec := &recorder{t: t, msgs: map[string][]*protocol.Message{}}
	if err := b.Start(context.Background(), rec); err != nil {
		t.Fatal(err)
	}
	abil := broker.Resolve(b, nil)
	eventually(t, "broker ready", abil.Ready)
	return b, rec
}

const wait = 10 * time.Second

func eventually(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(wait)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %s waiting for %s", wait, what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

func ctxT(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), wait)
	t.Cleanup(cancel)
	return ctx
}

func msg(channel string, i int) *protocol.Message {
	return &protocol.Message{Channel: channel, Event: "e", Data: []byte(fmt.Sprintf(`{"n":%d}`, i)), ID: fmt.Sprintf("m%d", i)}
}

// contiguous reports whether msgs have offsets from, from+1, ... in order.
func contiguous(msgs []*protocol.Message, from uint64) error {
	for i, m := range msgs {
		if m.Offset != from+uint64(i) {
			return fmt.Errorf("message %d has offset %d, want %d", i, m.Offset, from+uint64(i))
		}
	}
	return nil
}

func subscribe(t *testing.T, b broker.Broker, channel string) {
	t.Helper()
	if err := b.Subscribe(ctxT(t), channel); err != nil {
		t.Fatal(err)
	}
}

// A channel's messages are numbered from 1 and delivered in offset order,
// each once.
func testOrdering(t *testing.T, newBroker Factory) {
	b, rec := start(t, newBroker)
	ctx := ctxT(t)
	subscribe(t, b, "ord")
	const n = 200
	for i := 1; i <= n; i++ {
		pos, err := b.Publish(ctx, msg("ord", i), broker.ChannelOptions{})
		if err != nil {
			t.Fatal(err)
		}
		if pos.Offset != uint64(i) || pos.Epoch == "" {
			t.Fatalf("publish %d: position %+v", i, pos)
		}
	}
	eventually(t, "every message delivered", func() bool { return len(rec.messages("ord")) >= n })
	got := rec.messages("ord")
	if len(got) != n {
		t.Fatalf("delivered %d messages, want %d", len(got), n)
	}
	if err := contiguous(got, 1); err != nil {
		t.Fatal(err)
	}
	for i, m := range got {
		if want := fmt.Sprintf(`{"n":%d}`, i+1); string(m.Data) != want {
			t.Fatalf("message %d is %s, want %s", i, m.Data, want)
		}
	}
}

// Concurrent publishers to one channel get distinct offsets with no gap,
// and delivery follows offset order.
func testConcurrentPublishers(t *testing.T, newBroker Factory) {
	b, rec := start(t, newBroker)
	ctx := ctxT(t)
	subscribe(t, b, "conc")
	const publishers, each = 8, 50
	offsets := make(chan uint64, publishers*each)
	var wg sync.WaitGroup
	for p := range publishers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range each {
				pos, err := b.Publish(ctx, msg("conc", p*each+i), broker.ChannelOptions{HistorySize: publishers * each})
				if err != nil {
					t.Error(err)
					return
				}
				offsets <- pos.Offset
			}
		}()
	}
	wg.Wait()
	close(offsets)
	var got []uint64
	for o := range offsets {
		got = append(got, o)
	}
	slices.Sort(got)
	for i, o := range got {
		if o != uint64(i+1) {
			t.Fatalf("acknowledged offsets are not 1..%d: at %d found %d", publishers*each, i, o)
		}
	}
	eventually(t, "every message delivered", func() bool { return len(rec.messages("conc")) >= publishers*each })
	if err := contiguous(rec.messages("conc"), 1); err != nil {
		t.Fatalf("delivery: %v", err)
	}
	hist, pos, err := b.History(ctx, "conc", broker.HistoryQuery{Options: broker.ChannelOptions{HistorySize: publishers * each}})
	if err != nil {
		t.Fatal(err)
	}
	if pos.Offset != publishers*each || len(hist) != publishers*each {
		t.Fatalf("history: %d messages up to %d, want %d", len(hist), pos.Offset, publishers*each)
	}
	if err := contiguous(hist, 1); err != nil {
		t.Fatalf("history: %v", err)
	}
}

// History keeps the newest HistorySize messages; asking from before them
// is a gap; Limit caps and a negative Limit returns only the position.
func testHistoryLimit(t *testing.T, newBroker Factory) {
	b, _ := start(t, newBroker)
	ctx := ctxT(t)
	opts := broker.ChannelOptions{HistorySize: 5}
	var last protocol.Position
	for i := 1; i <= 10; i++ {
		pos, err := b.Publish(ctx, msg("lim", i), opts)
		if err != nil {
			t.Fatal(err)
		}
		last = pos
	}
	all, pos, err := b.History(ctx, "lim", broker.HistoryQuery{Options: opts})
	if err != nil || pos != last || len(all) != 5 || contiguous(all, 6) != nil {
		t.Fatalf("whole history: %d messages, %+v, %v; want offsets 6..10 at %+v", len(all), pos, err, last)
	}
	newest, _, err := b.History(ctx, "lim", broker.HistoryQuery{Limit: 2, Options: opts})
	if err != nil || len(newest) != 2 || contiguous(newest, 9) != nil {
		t.Fatalf("limit 2 without since: %v %v; want offsets 9, 10", newest, err)
	}
	since := protocol.Position{Epoch: last.Epoch, Offset: 7}
	after, _, err := b.History(ctx, "lim", broker.HistoryQuery{Since: &since, Options: opts})
	if err != nil || len(after) != 3 || contiguous(after, 8) != nil {
		t.Fatalf("since 7: %v %v; want offsets 8..10", after, err)
	}
	oldest, _, err := b.History(ctx, "lim", broker.HistoryQuery{Since: &since, Limit: 1, Options: opts})
	if err != nil || len(oldest) != 1 || oldest[0].Offset != 8 {
		t.Fatalf("since 7 limit 1: %v %v; want offset 8", oldest, err)
	}
	since.Offset = 2
	if _, pos, err := b.History(ctx, "lim", broker.HistoryQuery{Since: &since, Options: opts}); !errors.Is(err, broker.ErrGap) || pos != last {
		t.Fatalf("since 2, before the kept messages: %v at %+v; want ErrGap at %+v", err, pos, last)
	}
	none, pos, err := b.History(ctx, "lim", broker.HistoryQuery{Limit: -1, Options: opts})
	if err != nil || len(none) != 0 || pos != last {
		t.Fatalf("limit -1: %d messages at %+v, %v; want none at %+v", len(none), pos, err, last)
	}
	if _, pos, err := b.History(ctx, "never-published", broker.HistoryQuery{Limit: -1, Options: opts}); err != nil || pos.Offset != 0 {
		t.Fatalf("history of an unknown channel: %+v %v", pos, err)
	}
}

// Messages published longer than HistoryTTL ago count as gone; offsets
// go on from where they were.
func testHistoryTTL(t *testing.T, newBroker Factory) {
	b, _ := start(t, newBroker)
	ctx := ctxT(t)
	opts := broker.ChannelOptions{HistorySize: 10, HistoryTTL: 300 * time.Millisecond}
	for i := 1; i <= 3; i++ {
		if _, err := b.Publish(ctx, msg("ttl", i), opts); err != nil {
			t.Fatal(err)
		}
	}
	eventually(t, "the messages to expire", func() bool {
		kept, _, err := b.History(ctx, "ttl", broker.HistoryQuery{Options: opts})
		return err == nil && len(kept) == 0
	})
	for i := 4; i <= 5; i++ {
		if _, err := b.Publish(ctx, msg("ttl", i), opts); err != nil {
			t.Fatal(err)
		}
	}
	kept, pos, err := b.History(ctx, "ttl", broker.HistoryQuery{Options: opts})
	if err != nil || pos.Offset != 5 || len(kept) != 2 || contiguous(kept, 4) != nil {
		t.Fatalf("history with a TTL: %d messages at %+v, %v; want offsets 4, 5", len(kept), pos, err)
	}
	since := protocol.Position{Epoch: pos.Epoch, Offset: 1}
	if _, _, err := b.History(ctx, "ttl", broker.HistoryQuery{Since: &since, Options: opts}); !errors.Is(err, broker.ErrGap) {
		t.Fatalf("since an expired message: %v, want ErrGap", err)
	}
}

// Every message of a channel carries the channel's epoch; a since from
// another epoch is a gap.
func testEpochs(t *testing.T, newBroker Factory) {
	b, rec := start(t, newBroker)
	ctx := ctxT(t)
	subscribe(t, b, "ep")
	opts := broker.ChannelOptions{HistorySize: 10}
	first, err := b.Publish(ctx, msg("ep", 1), opts)
	if err != nil {
		t.Fatal(err)
	}
	second, err := b.Publish(ctx, msg("ep", 2), opts)
	if err != nil {
		t.Fatal(err)
	}
	if first.Epoch == "" || second.Epoch != first.Epoch {
		t.Fatalf("epochs %q then %q: want one non-empty epoch", first.Epoch, second.Epoch)
	}
	eventually(t, "delivery", func() bool { return len(rec.messages("ep")) == 2 })
	for _, m := range rec.messages("ep") {
		if m.Epoch != first.Epoch {
			t.Fatalf("delivered message has epoch %q, want %q", m.Epoch, first.Epoch)
		}
	}
	other := protocol.Position{Epoch: first.Epoch + "x", Offset: 1}
	if _, pos, err := b.History(ctx, "ep", broker.HistoryQuery{Since: &other, Options: opts}); !errors.Is(err, broker.ErrGap) || pos != second {
		t.Fatalf("since another epoch: %v at %+v; want ErrGap at %+v", err, pos, second)
	}
}

// Members are per connection: adding a conn again replaces it, removing
// an absent one is no error.
func testPresence(t *testing.T, newBroker Factory) {
	b, _ := start(t, newBroker)
	ps := broker.Resolve(b, nil).Presence
	if ps == nil {
		t.Skip("the broker keeps no presence")
	}
	ctx := ctxT(t)
	members := func() []string {
		t.Helper()
		ms, err := ps.Members(ctx, "pres")
		if err != nil {
			t.Fatal(err)
		}
		var out []string
		for _, m := range ms {
			out = append(out, m.Conn+"="+m.User)
		}
		slices.Sort(out)
		return out
	}
	for _, m := range []protocol.Member{{User: "ann", Conn: "c1"}, {User: "bob", Conn: "c2"}, {User: "ann2", Conn: "c1"}} {
		if err := ps.AddMember(ctx, "pres", m); err != nil {
			t.Fatal(err)
		}
	}
	if got := members(); !slices.Equal(got, []string{"c1=ann2", "c2=bob"}) {
		t.Fatalf("members %v, want c1=ann2 c2=bob", got)
	}
	if err := ps.RemoveMember(ctx, "pres", "c1"); err != nil {
		t.Fatal(err)
	}
	if err := ps.RemoveMember(ctx, "pres", "absent"); err != nil {
		t.Fatalf("removing an absent member: %v", err)
	}
	if got := members(); !slices.Equal(got, []string{"c2=bob"}) {
		t.Fatalf("members after leave %v, want c2=bob", got)
	}
	if s := broker.Resolve(b, nil).Sampler; s != nil {
		some, total, err := s.MembersUpTo(ctx, "pres", 0)
		if err != nil || len(some) != 0 || total != 1 {
			t.Fatalf("MembersUpTo 0: %v of %d, %v", some, total, err)
		}
	}
}

// A join or leave reaches the handler of a broker subscribed to its channel.
func testPresenceEvents(t *testing.T, newBroker Factory) {
	b, rec := start(t, newBroker)
	ctx := ctxT(t)
	subscribe(t, b, "pe")
	for _, action := range []string{protocol.ActionJoin, protocol.ActionLeave} {
		ev := &protocol.PresenceEvent{Channel: "pe", Action: action, Member: protocol.Member{User: "ann", Conn: "c1"}}
		if err := b.PublishPresence(ctx, ev); err != nil {
			t.Fatal(err)
		}
	}
	eventually(t, "join and leave delivered", func() bool { return len(rec.presence()) == 2 })
	evs := rec.presence()
	if evs[0].Action != protocol.ActionJoin || evs[1].Action != protocol.ActionLeave || evs[0].Member.Conn != "c1" {
		t.Fatalf("events %+v, want join then leave of c1", evs)
	}
}

// Subscribe and Unsubscribe of many channels at once, concurrently with
// publishes, leave every finally subscribed channel routed here: a message
// published after Subscribe returned is delivered.
func testSubscribeRaces(t *testing.T, newBroker Factory) {
	b, rec := start(t, newBroker)
	ctx := ctxT(t)
	const channels, cycles = 16, 20
	var wg sync.WaitGroup
	for c := range channels {
		wg.Add(2)
		ch := fmt.Sprintf("race%d", c)
		go func() {
			defer wg.Done()
			for range cycles {
				if err := b.Subscribe(ctx, ch); err != nil {
					t.Error(err)
					return
				}
				if err := b.Unsubscribe(ctx, ch); err != nil {
					t.Error(err)
					return
				}
			}
			if err := b.Subscribe(ctx, ch); err != nil {
				t.Error(err)
			}
		}()
		go func() {
			defer wg.Done()
			for i := range cycles {
				if _, err := b.Publish(ctx, msg(ch, i), broker.ChannelOptions{}); err != nil {
					t.Error(err)
					return
				}
			}
		}()
	}
	wg.Wait()
	if t.Failed() {
		return
	}
	for c := range channels {
		ch := fmt.Sprintf("race%d", c)
		pos, err := b.Publish(ctx, msg(ch, 999), broker.ChannelOptions{})
		if err != nil {
			t.Fatal(err)
		}
		eventually(t, "the last message of "+ch, func() bool {
			ms := rec.messages(ch)
			return len(ms) > 0 && ms[len(ms)-1].Offset == pos.Offset
		})
		ms := rec.messages(ch)
		for i := 1; i < len(ms); i++ {
			if ms[i].Offset <= ms[i-1].Offset {
				t.Fatalf("%s: offset %d delivered after %d", ch, ms[i].Offset, ms[i-1].Offset)
			}
		}
	}
}

// PeerFactory returns two new, not yet started brokers of two nodes that
// share one backing store, for brokers that serve many nodes. Members a
// node adds must expire within expiry once that node is closed without
// removing them.
type PeerFactory func(t *testing.T) (a, b broker.Broker, expiry time.Duration)

// RunPeers runs the contract tests of brokers shared by several nodes.
func RunPeers(t *testing.T, newPeers PeerFactory) {
	t.Run("DeliveryAcrossNodes", func(t *testing.T) { testAcrossNodes(t, newPeers) })
	t.Run("PresenceExpiresWithItsNode", func(t *testing.T) { testPresenceExpiry(t, newPeers) })
}

func startPeers(t *testing.T, newPeers PeerFactory) (a, b broker.Broker, ra, rb *recorder, expiry time.Duration) {
	t.Helper()
	a, b, expiry = newPeers(t)
	pa, pb := a, b
	a, ra = start(t, func(*testing.T) broker.Broker { return pa })
	b, rb = start(t, func(*testing.T) broker.Broker { return pb })
	return a, b, ra, rb, expiry
}

// A message published through one node reaches a node subscribed to its
// channel, in order, numbered once for both.
func testAcrossNodes(t *testing.T, newPeers PeerFactory) {
	a, b, ra, rb, _ := startPeers(t, newPeers)
	ctx := ctxT(t)
	subscribe(t, b, "x")
	subscribe(t, a, "x")
	for i := 1; i <= 20; i++ {
		pub := a
		if i%2 == 0 {
			pub = b
		}
		if _, err := pub.Publish(ctx, msg("x", i), broker.ChannelOptions{}); err != nil {
			t.Fatal(err)
		}
	}
	for name, rec := range map[string]*recorder{"a": ra, "b": rb} {
		eventually(t, "delivery on "+name, func() bool { return len(rec.messages("x")) == 20 })
		if err := contiguous(rec.messages("x"), 1); err != nil {
			t.Fatalf("node %s: %v", name, err)
		}
	}
}

// Members added by a node are seen by every node, and go by themselves
// within the expiry once their node is gone without removing them.
func testPresenceExpiry(t *testing.T, newPeers PeerFactory) {
	a, b, _, _, expiry := startPeers(t, newPeers)
	pa, pb := broker.Resolve(a, nil).Presence, broker.Resolve(b, nil).Presence
	if pa == nil || pb == nil {
		t.Fatal("a broker shared by nodes must keep presence")
	}
	ctx := ctxT(t)
	if err := pa.AddMember(ctx, "px", protocol.Member{User: "ann", Conn: "a1"}); err != nil {
		t.Fatal(err)
	}
	if err := pb.AddMember(ctx, "px", protocol.Member{User: "bob", Conn: "b1"}); err != nil {
		t.Fatal(err)
	}
	count := func() int {
		ms, err := pb.Members(ctx, "px")
		if err != nil {
			t.Fatal(err)
		}
		return len(ms)
	}
	if n := count(); n != 2 {
		t.Fatalf("members seen from b: %d, want 2", n)
	}
	// Well past the expiry a's member must be gone; b's, refreshed, stays.
	if err := a.Close(); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(3*expiry + wait)
	for count() != 1 {
		if time.Now().After(deadline) {
			t.Fatalf("a closed node's member outlived %s", 3*expiry+wait)
		}
		time.Sleep(20 * time.Millisecond)
	}
	ms, _ := pb.Members(ctx, "px")
	if ms[0].Conn != "b1" {
		t.Fatalf("left member %+v, want b1", ms[0])
	}
}
