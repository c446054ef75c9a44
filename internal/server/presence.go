package server

import (
	"context"
	"fmt"
	"hash/maphash"
	"sync"
	"time"

	"github.com/eddyrt/eddy/internal/protocol"
)

// Presence cost is kept flat as a channel grows:
//
//   - join and leave events of one channel gather for a window and then
//     leave as one WebSocket message per subscriber (the events joined by
//     newlines, which the protocol's batching allows), encoded once and
//     shared: one enqueue per subscriber per window instead of one per event;
//   - the window grows with the channel (windowPerMember, from presenceWindow
//     up to maxPresenceWindow), so the writes a channel costs per second stay
//     flat instead of growing with its size: every member still learns of
//     every join, a little later in a big channel;
//   - a joiner's subscribed reply lists at most maxSubscribedMembers members
//     plus members_total, so joining a 10,000-member channel does not
//     encode 10,000 members; the presence request and the HTTP API still
//     return everyone.
const (
	presenceWindow        = 50 * time.Millisecond
	windowPerMember       = 100 * time.Microsecond // 10,000 members: 1 s
	maxPresenceWindow     = time.Second
	maxSubscribedMembers  = 100
	maxPresenceFrameBytes = 256 << 10 // a window's events beyond this leave in further messages
)

// brokerHandler is what the broker delivers to: messages go straight to
// the hub, presence events through the coalescing fan-out.
type brokerHandler struct{ s *Server }

func (h brokerHandler) HandleMessage(m *protocol.Message) { h.s.hub.HandleMessage(m) }

func (h brokerHandler) HandlePresence(ev *protocol.PresenceEvent) { h.s.presenceOut.publish(ev) }

// presenceFanout holds, per channel with join_leave on, the local
// subscriptions that get its events and the events of the current window.
type presenceFanout struct {
	window time.Duration
	seed   maphash.Seed
	shards [32]presenceShard
}

type presenceShard struct {
	mu       sync.Mutex
	channels map[string]*presenceChannel
}

type presenceChannel struct {
	name string
	// flushing serialises this channel's deliveries, so windows arrive in order.
	flushing sync.Mutex

	mu      sync.Mutex
	subs    map[*subscription]struct{}
	pending [][]byte // encoded events of the open window
	armed   bool     // a flush is scheduled
	scratch []*subscription
}

func newPresenceFanout(window time.Duration) *presenceFanout {
	f := &presenceFanout{window: window, seed: maphash.MakeSeed()}
	for i := range f.shards {
		f.shards[i].channels = make(map[string]*presenceChannel)
	}
	return f
}

func (f *presenceFanout) shard(channel string) *presenceShard {
	return &f.shards[maphash.String(f.seed, channel)%uint64(len(f.shards))]
}

// add makes sub receive channel's join and leave events.
func (f *presenceFanout) add(sub *subscription) {
	sh := f.shard(sub.channel)
	sh.mu.Lock()
	ch := sh.channels[sub.channel]
	if ch == nil {
		ch = &presenceChannel{name: sub.channel, subs: make(map[*subscription]struct{})}
		sh.channels[sub.channel] = ch
	}
	ch.mu.Lock()
	ch.subs[sub] = struct{}{}
	ch.mu.Unlock()
	sh.mu.Unlock()
}

// remove stops sub's events; the last one forgets the channel (a flush
// already scheduled then delivers to nobody).
func (f *presenceFanout) remove(sub *subscription) {
	sh := f.shard(sub.channel)
	sh.mu.Lock()
	defer sh.mu.Unlock()
	ch := sh.channels[sub.channel]
	if ch == nil {
		return
	}
	ch.mu.Lock()
	delete(ch.subs, sub)
	empty := len(ch.subs) == 0
	ch.mu.Unlock()
	if empty {
		delete(sh.channels, sub.channel)
	}
}

// publish adds ev to its channel's window, opening one if none is open.
// Events of channels without local listeners are dropped.
func (f *presenceFanout) publish(ev *protocol.PresenceEvent) {
	sh := f.shard(ev.Channel)
	sh.mu.Lock()
	ch := sh.channels[ev.Channel]
	sh.mu.Unlock()
	if ch == nil {
		return
	}
	frame := ev.Encode()
	ch.mu.Lock()
	ch.pending = append(ch.pending, frame)
	schedule := !ch.armed
	ch.armed = true
	window := min(max(f.window, time.Duration(len(ch.subs))*windowPerMember), max(f.window, maxPresenceWindow))
	ch.mu.Unlock()
	if schedule {
		time.AfterFunc(window, func() { ch.flush() })
	}
}

// flush sends the window's events to every subscriber as shared messages.
func (ch *presenceChannel) flush() {
	ch.flushing.Lock()
	defer ch.flushing.Unlock()
	ch.mu.Lock()
	events := ch.pending
	ch.pending = nil
	ch.armed = false
	subs := ch.scratch[:0]
	for s := range ch.subs {
		subs = append(subs, s)
	}
	ch.scratch = nil
	ch.mu.Unlock()

	for len(events) > 0 {
		var frame []byte
		frame, events = joinFrames(events, maxPresenceFrameBytes)
		for _, s := range subs {
			s.DeliverPresence(frame)
		}
	}
	clear(subs)
	ch.mu.Lock()
	ch.scratch = subs[:0]
	ch.mu.Unlock()
}

// joinFrames joins frames with newlines up to about limit bytes (at least
// one frame) and returns the rest.
func joinFrames(frames [][]byte, limit int) (joined []byte, rest [][]byte) {
	if len(frames) == 1 {
		return frames[0], nil
	}
	size, n := 0, 0
	for n < len(frames) && (n == 0 || size+len(frames[n])+1 <= limit) {
		size += len(frames[n]) + 1
		n++
	}
	joined = make([]byte, 0, size)
	for i, f := range frames[:n] {
		if i > 0 {
			joined = append(joined, '\n')
		}
		joined = append(joined, f...)
	}
	return joined, frames[n:]
}

// someMembers lists up to max members of channel for a subscribed reply.
func (s *Server) someMembers(ctx context.Context, channel string, max int) ([]protocol.Member, int, error) {
	if s.abil.Sampler != nil {
		return s.abil.Sampler.MembersUpTo(ctx, channel, max)
	}
	all, err := s.presence.Members(ctx, channel)
	if err != nil {
		return nil, 0, err
	}
	return all[:min(len(all), max)], len(all), nil
}

// members lists a channel's presence.
func (s *Server) members(ctx context.Context, channel string) ([]protocol.Member, error) {
	if !s.cfg.ChannelOptionsFor(channel).Presence || s.presence == nil {
		return nil, protocol.Errorf(protocol.CodeBadRequest, "channel %q has no presence; enable presence for its namespace", channel)
	}
	m, err := s.presence.Members(ctx, channel)
	if err != nil {
		return nil, fmt.Errorf("presence of %q: %w", channel, err)
	}
	return m, nil
}
