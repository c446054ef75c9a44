package hub

import (
	"sync"
	"time"

	"github.com/eddyrt/eddy/internal/protocol"
)

// Presence cost is kept flat as a channel grows: join and leave events of
// one channel gather for a window and then leave as one WebSocket message
// per subscriber (the events joined by newlines, which the protocol's
// batching allows), encoded once and shared: one enqueue per subscriber
// per window instead of one per event. The window grows with the channel
// (windowPerMember, from PresenceWindow up to maxPresenceWindow), so the
// writes a channel costs per second stay flat instead of growing with its
// size: every member still learns of every join, a little later in a big
// channel.
const (
	PresenceWindow        = 50 * time.Millisecond
	windowPerMember       = 100 * time.Microsecond // 10,000 members: 1 s
	maxPresenceWindow     = time.Second
	maxPresenceFrameBytes = 256 << 10 // a window's events beyond this leave in further messages
)

// presenceWindow is the open window of one channel's subscriber set.
type presenceWindow struct {
	// flushing serialises this channel's deliveries, so windows arrive in order.
	flushing sync.Mutex

	mu      sync.Mutex
	pending []PresenceItem // events of the open window
	armed   bool           // a flush is scheduled
}

// PresenceItem is one event of a window: its encoded frame, and what a
// subscriber needs to tell whether it already knows of it (a member listed
// in its subscribed reply must not be announced to it again).
type PresenceItem struct {
	Frame []byte
	Join  bool
	Conn  string
}

// HandlePresence implements broker.Handler: it adds ev to its channel's
// window, opening one if none is open. Events of channels without local
// subscribers are dropped.
func (h *Hub) HandlePresence(ev *protocol.PresenceEvent) {
	sh := &h.shards[h.index(ev.Channel)%shardCount]
	sh.mu.RLock()
	subs := sh.channels[ev.Channel]
	if subs == nil {
		sh.mu.RUnlock()
		return
	}
	w := subs.presence.Load()
	if w == nil {
		subs.presence.CompareAndSwap(nil, &presenceWindow{})
		w = subs.presence.Load()
	}
	members := len(subs.list)
	sh.mu.RUnlock()

	item := PresenceItem{Frame: ev.Encode(), Join: ev.Action == protocol.ActionJoin, Conn: ev.Member.Conn}
	w.mu.Lock()
	w.pending = append(w.pending, item)
	schedule := !w.armed
	w.armed = true
	w.mu.Unlock()
	if schedule {
		window := min(max(h.window, time.Duration(members)*windowPerMember), max(h.window, maxPresenceWindow))
		time.AfterFunc(window, func() { h.flushPresence(ev.Channel, subs, w) })
	}
}

// flushPresence sends the window's events to every subscriber of the set
// the window belongs to, as shared messages. A set the channel no longer
// has (its last subscriber left) delivers to nobody.
func (h *Hub) flushPresence(channel string, subs *subSet, w *presenceWindow) {
	w.flushing.Lock()
	defer w.flushing.Unlock()
	w.mu.Lock()
	events := w.pending
	w.pending = nil
	w.armed = false
	w.mu.Unlock()

	sh := &h.shards[h.index(channel)%shardCount]
	sh.mu.RLock()
	defer sh.mu.RUnlock()
	if sh.channels[channel] != subs {
		return
	}
	frames := make([][]byte, len(events))
	for i, e := range events {
		frames[i] = e.Frame
	}
	for len(frames) > 0 {
		frame, rest := protocol.JoinBatch(frames, maxPresenceFrameBytes)
		part := events[:len(frames)-len(rest)]
		events, frames = events[len(part):], rest
		for _, s := range subs.list {
			s.DeliverPresence(frame, part)
		}
	}
}
