// Package hub is a node's registry of local subscriptions: it tells the
// broker which channels this node needs and fans what the broker delivers
// out to the channel's local subscribers: each message at once, encoded
// once and shared; presence events gathered per window (presence.go).
package hub

import (
	"context"
	"fmt"
	"hash/maphash"
	"sync"
	"sync/atomic"
	"time"

	"github.com/eddyrt/eddy/internal/broker"
	"github.com/eddyrt/eddy/internal/protocol"
)

// Subscriber is one connection's subscription to one channel.
//
// The hub calls Deliver and DeliverPresence with the channel's shard read
// lock held, Deliver for one channel in offset order; they must not block.
type Subscriber interface {
	Deliver(m *protocol.Message, frame []byte)
	// DeliverPresence gets a window of join/leave events: frame holds them
	// all, one per line, shared by every subscriber; events describe them.
	DeliverPresence(frame []byte, events []PresenceItem)
}

const (
	shardCount  = 128
	stripeCount = 256
)

// Hub is safe for concurrent use. It is the broker's Handler.
type Hub struct {
	broker broker.Broker
	window time.Duration // the shortest presence window
	seed   maphash.Seed
	shards [shardCount]shard
	// stripes serialise broker Subscribe/Unsubscribe per channel, so the
	// broker never sees them out of order for one channel.
	stripes [stripeCount]sync.Mutex
	obs     Observer // nil: nobody listens (observer.go)

	subscriptions atomic.Int64
	channels      atomic.Int64
	delivered     atomic.Uint64
}

type shard struct {
	mu       sync.RWMutex
	channels map[string]*subSet
}

// subSet is one channel's local subscribers: a slice, which fan-out walks
// faster than a map and which costs a one-subscriber channel (a user's own
// channel, the common case) a few dozen bytes instead of a map's hundreds;
// an index for removal once the set is large.
type subSet struct {
	list     []Subscriber
	index    map[Subscriber]int             // position in list; only past indexFrom entries
	presence atomic.Pointer[presenceWindow] // made by the channel's first presence event
	messages atomic.Uint64                  // messages fanned out on this node (channels.go)
}

const indexFrom = 16

func (ss *subSet) find(s Subscriber) int {
	if ss.index != nil {
		if i, ok := ss.index[s]; ok {
			return i
		}
		return -1
	}
	for i, x := range ss.list {
		if x == s {
			return i
		}
	}
	return -1
}

func (ss *subSet) add(s Subscriber) {
	ss.list = append(ss.list, s)
	switch {
	case ss.index != nil:
		ss.index[s] = len(ss.list) - 1
	case len(ss.list) > indexFrom:
		ss.index = make(map[Subscriber]int, len(ss.list))
		for i, x := range ss.list {
			ss.index[x] = i
		}
	}
}

// remove swaps the last subscriber into i's place.
func (ss *subSet) remove(i int) {
	last := len(ss.list) - 1
	if ss.index != nil {
		delete(ss.index, ss.list[i])
		if i != last {
			ss.index[ss.list[last]] = i
		}
	}
	ss.list[i] = ss.list[last]
	ss.list[last] = nil
	ss.list = ss.list[:last]
	if cap(ss.list) > 64 && len(ss.list) < cap(ss.list)/4 {
		ss.list = append([]Subscriber(nil), ss.list...)
	}
	if ss.index != nil && len(ss.list) <= indexFrom/2 {
		ss.index = nil
	}
}

var _ broker.Handler = (*Hub)(nil)

// New returns a hub over b, with presence windows of PresenceWindow. The
// hub calls b's Subscribe and Unsubscribe; the caller starts b with the
// hub as its Handler.
func New(b broker.Broker) *Hub { return NewWithWindow(b, PresenceWindow) }

// NewWithWindow is New with presence windows of at least window.
func NewWithWindow(b broker.Broker, window time.Duration) *Hub {
	h := &Hub{broker: b, window: window, seed: maphash.MakeSeed()}
	for i := range h.shards {
		h.shards[i].channels = make(map[string]*subSet)
	}
	return h
}

func (h *Hub) index(channel string) uint64 { return maphash.String(h.seed, channel) }

// Subscribe registers s for channel. When s is the node's first subscriber
// of channel, it returns only after the broker routes channel here, so
// nothing published after Subscribe returns can be missed.
func (h *Hub) Subscribe(ctx context.Context, channel string, s Subscriber) error {
	i := h.index(channel)
	stripe := &h.stripes[i%stripeCount]
	sh := &h.shards[i%shardCount]
	stripe.Lock()
	defer stripe.Unlock()

	sh.mu.Lock()
	subs := sh.channels[channel]
	first := subs == nil
	if first {
		subs = &subSet{}
		sh.channels[channel] = subs
	}
	if subs.find(s) >= 0 {
		sh.mu.Unlock()
		return nil
	}
	subs.add(s)
	sh.mu.Unlock()

	if first {
		if err := h.broker.Subscribe(ctx, channel); err != nil {
			sh.mu.Lock()
			delete(sh.channels, channel)
			sh.mu.Unlock()
			return fmt.Errorf("subscribe %q: %w", channel, err)
		}
		h.channels.Add(1)
		if h.obs != nil {
			h.obs.LocalOccupied(channel)
		}
	}
	h.subscriptions.Add(1)
	return nil
}

// Unsubscribe removes s from channel; the last local subscriber of a channel
// releases the broker's routing of it.
func (h *Hub) Unsubscribe(ctx context.Context, channel string, s Subscriber) error {
	i := h.index(channel)
	stripe := &h.stripes[i%stripeCount]
	sh := &h.shards[i%shardCount]
	stripe.Lock()
	defer stripe.Unlock()

	sh.mu.Lock()
	subs := sh.channels[channel]
	at := -1
	if subs != nil {
		at = subs.find(s)
	}
	if at < 0 {
		sh.mu.Unlock()
		return nil
	}
	subs.remove(at)
	last := len(subs.list) == 0
	if last {
		delete(sh.channels, channel)
	}
	sh.mu.Unlock()
	h.subscriptions.Add(-1)
	if last {
		h.channels.Add(-1)
		if h.obs != nil {
			h.obs.LocalVacated(channel)
		}
		if err := h.broker.Unsubscribe(ctx, channel); err != nil {
			return fmt.Errorf("unsubscribe %q: %w", channel, err)
		}
	}
	return nil
}

// HandleMessage implements broker.Handler: encode once, hand the same bytes
// to every local subscriber.
func (h *Hub) HandleMessage(m *protocol.Message) {
	sh := &h.shards[h.index(m.Channel)%shardCount]
	sh.mu.RLock()
	subs := sh.channels[m.Channel]
	if subs == nil || len(subs.list) == 0 {
		sh.mu.RUnlock()
		return
	}
	frame := protocol.AppendMessage(make([]byte, 0, 128+len(m.Data)+len(m.Channel)+len(m.Event)), m)
	for _, s := range subs.list {
		s.Deliver(m, frame)
	}
	n := len(subs.list)
	subs.messages.Add(1)
	sh.mu.RUnlock()
	h.delivered.Add(uint64(n))
}

// Stats are the hub's counters.
type Stats struct {
	Channels      int64
	Subscriptions int64
	Delivered     uint64 // messages handed to subscribers since start
}

// Stats returns the current counters.
func (h *Hub) Stats() Stats {
	return Stats{Channels: h.channels.Load(), Subscriptions: h.subscriptions.Load(), Delivered: h.delivered.Load()}
}

// Subscribers returns how many local subscribers channel has.
func (h *Hub) Subscribers(channel string) int {
	sh := &h.shards[h.index(channel)%shardCount]
	sh.mu.RLock()
	defer sh.mu.RUnlock()
	if subs := sh.channels[channel]; subs != nil {
		return len(subs.list)
	}
	return 0
}
