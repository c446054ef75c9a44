// Package memory is the embedded single-node broker: channel streams,
// history and presence live in this process and are lost when it stops,
// which a fresh epoch tells recovering clients.
//
// What grows without a janitor: every channel ever published to keeps its
// offset counter (a few dozen bytes) for the life of the process, since
// offsets must never restart within an epoch. Kept messages past
// history_ttl are dropped when the channel is next published to or read,
// not on a timer, so a channel that went quiet holds its last
// history_size messages until then. Presence entries go when their
// connection leaves.
package memory

import (
	"context"
	"crypto/rand"
	"encoding/base32"
	"hash/maphash"
	"sort"
	"sync"
	"time"

	"github.com/eddyrt/eddy/internal/broker"
	"github.com/eddyrt/eddy/internal/protocol"
)

const shardCount = 64

// Broker is the in-memory broker. The zero value is not usable; call New.
type Broker struct {
	epoch   string
	seed    maphash.Seed
	handler broker.Handler
	now     func() time.Time
	shards  [shardCount]shard
}

type shard struct {
	mu       sync.Mutex
	streams  map[string]*stream
	presence map[string]map[string]protocol.Member // channel -> conn -> member
}

var (
	_ broker.Broker        = (*Broker)(nil)
	_ broker.PresenceStore = (*Broker)(nil)
	_ broker.MemberSampler = (*Broker)(nil)
)

// New returns an in-memory broker with a fresh epoch.
func New() *Broker {
	b := &Broker{epoch: newEpoch(), seed: maphash.MakeSeed(), now: time.Now}
	for i := range b.shards {
		b.shards[i].streams = make(map[string]*stream)
		b.shards[i].presence = make(map[string]map[string]protocol.Member)
	}
	return b
}

func newEpoch() string {
	var b [5]byte
	_, _ = rand.Read(b[:])
	return base32.StdEncoding.EncodeToString(b[:])
}

// Epoch is the stream epoch of every channel of this broker instance.
func (b *Broker) Epoch() string { return b.epoch }

func (b *Broker) shard(channel string) *shard {
	return &b.shards[maphash.String(b.seed, channel)%shardCount]
}

// Start records the handler; the memory broker delivers synchronously.
func (b *Broker) Start(_ context.Context, h broker.Handler) error {
	b.handler = h
	return nil
}

// Publish numbers m, keeps it and hands it to the handler, all under the
// channel's shard lock so that delivery order is offset order.
func (b *Broker) Publish(_ context.Context, m *protocol.Message, opts broker.ChannelOptions) (protocol.Position, error) {
	s := b.shard(m.Channel)
	s.mu.Lock()
	defer s.mu.Unlock()
	st := s.streams[m.Channel]
	if st == nil {
		st = &stream{}
		s.streams[m.Channel] = st
	}
	st.top++
	m.Offset = st.top
	m.Epoch = b.epoch
	if opts.HistorySize > 0 {
		now := b.now()
		if opts.HistoryTTL > 0 {
			st.expire(now.Add(-opts.HistoryTTL))
		}
		st.keep(m, now, opts.HistorySize)
	} else if st.n > 0 {
		st.ring, st.first, st.n = nil, 0, 0 // history was switched off
	}
	if b.handler != nil {
		b.handler.HandleMessage(m)
	}
	return protocol.Position{Epoch: b.epoch, Offset: st.top}, nil
}

// stream is one channel's numbering and its kept history, a ring buffer.
// The kept messages always have consecutive offsets ending at top: every
// publish appends one (or clears the ring when history is off) and
// expiry and overwriting drop only the oldest.
type stream struct {
	top   uint64
	ring  []entry
	first int // index of the oldest kept message in ring
	n     int // kept messages
}

// entry is one kept message and when the broker kept it (the TTL's clock).
type entry struct {
	m  *protocol.Message
	at time.Time
}

func (st *stream) entry(i int) *entry { return &st.ring[(st.first+i)%len(st.ring)] }

// keep appends m to the history of at most size messages. The ring grows
// as messages come, so a channel with a long history_size and few messages
// does not hold a full-size ring.
func (st *stream) keep(m *protocol.Message, at time.Time, size int) {
	switch {
	case len(st.ring) > size: // the history got shorter
		st.resize(size)
	case st.n == len(st.ring) && st.n < size:
		st.resize(min(size, max(8, 2*len(st.ring))))
	}
	if st.n < len(st.ring) {
		*st.entry(st.n) = entry{m, at}
		st.n++
		return
	}
	st.ring[st.first] = entry{m, at}
	st.first = (st.first + 1) % len(st.ring)
}

func (st *stream) resize(size int) {
	keep := min(st.n, size)
	ring := make([]entry, size)
	for i := 0; i < keep; i++ {
		ring[i] = *st.entry(st.n - keep + i)
	}
	st.ring, st.first, st.n = ring, 0, keep
}

// expire drops the kept messages older than cutoff; when none is left the
// ring itself is released, so an idle channel holds only its counter.
func (st *stream) expire(cutoff time.Time) {
	for st.n > 0 && st.entry(0).at.Before(cutoff) {
		*st.entry(0) = entry{}
		st.first = (st.first + 1) % len(st.ring)
		st.n--
	}
	if st.n == 0 && st.ring != nil {
		st.ring, st.first = nil, 0
	}
}

// Subscribe is a no-op: one node receives every channel.
func (b *Broker) Subscribe(context.Context, string) error { return nil }

// Unsubscribe is a no-op: one node receives every channel.
func (b *Broker) Unsubscribe(context.Context, string) error { return nil }

// History implements broker.Broker. It copies only the messages it
// returns, so asking for the position alone (Limit < 0) costs nothing
// however long the history is.
func (b *Broker) History(_ context.Context, channel string, q broker.HistoryQuery) ([]*protocol.Message, protocol.Position, error) {
	since, limit := q.Since, q.Limit
	s := b.shard(channel)
	s.mu.Lock()
	defer s.mu.Unlock()
	var top uint64
	kept := 0
	st := s.streams[channel]
	if st != nil {
		if q.Options.HistoryTTL > 0 {
			st.expire(b.now().Add(-q.Options.HistoryTTL))
		}
		top, kept = st.top, st.n
	}
	pos := protocol.Position{Epoch: b.epoch, Offset: top}
	oldest := top - uint64(kept) + 1 // offset of the oldest kept message (top+1 when none)
	lo, hi := 0, kept                // the range of kept messages to return
	if since != nil {
		// A position past the top cannot come from this stream: the
		// client must start over, exactly as after an epoch change.
		if since.Epoch != b.epoch || since.Offset > top || since.Offset+1 < oldest {
			return nil, pos, broker.ErrGap
		}
		lo = int(since.Offset + 1 - oldest)
	}
	if limit < 0 {
		return nil, pos, nil
	}
	if limit > 0 && hi-lo > limit {
		if since != nil {
			hi = lo + limit
		} else {
			lo = hi - limit
		}
	}
	if lo == hi {
		return nil, pos, nil
	}
	out := make([]*protocol.Message, 0, hi-lo)
	for i := lo; i < hi; i++ {
		out = append(out, st.entry(i).m)
	}
	return out, pos, nil
}

// PublishPresence hands ev to the handler.
func (b *Broker) PublishPresence(_ context.Context, ev *protocol.PresenceEvent) error {
	if b.handler != nil {
		b.handler.HandlePresence(ev)
	}
	return nil
}

// AddMember implements broker.PresenceStore.
func (b *Broker) AddMember(_ context.Context, channel string, m protocol.Member) error {
	s := b.shard(channel)
	s.mu.Lock()
	defer s.mu.Unlock()
	members := s.presence[channel]
	if members == nil {
		members = make(map[string]protocol.Member)
		s.presence[channel] = members
	}
	members[m.Conn] = m
	return nil
}

// RemoveMember implements broker.PresenceStore.
func (b *Broker) RemoveMember(_ context.Context, channel, conn string) error {
	s := b.shard(channel)
	s.mu.Lock()
	defer s.mu.Unlock()
	if members := s.presence[channel]; members != nil {
		delete(members, conn)
		if len(members) == 0 {
			delete(s.presence, channel)
		}
	}
	return nil
}

// Members implements broker.PresenceStore, ordered by connection id.
func (b *Broker) Members(_ context.Context, channel string) ([]protocol.Member, error) {
	s := b.shard(channel)
	s.mu.Lock()
	out := make([]protocol.Member, 0, len(s.presence[channel]))
	for _, m := range s.presence[channel] {
		out = append(out, m)
	}
	s.mu.Unlock()
	sort.Slice(out, func(i, j int) bool { return out[i].Conn < out[j].Conn })
	return out, nil
}

// MembersUpTo returns at most max members of channel (which ones is
// unspecified when there are more, ordered by connection id) and how many
// there are, without copying or sorting the whole set.
func (b *Broker) MembersUpTo(_ context.Context, channel string, max int) ([]protocol.Member, int, error) {
	s := b.shard(channel)
	s.mu.Lock()
	members := s.presence[channel]
	total := len(members)
	out := make([]protocol.Member, 0, min(total, max))
	for _, m := range members {
		if len(out) == max {
			break
		}
		out = append(out, m)
	}
	s.mu.Unlock()
	sort.Slice(out, func(i, j int) bool { return out[i].Conn < out[j].Conn })
	return out, total, nil
}

// Close implements broker.Broker.
func (b *Broker) Close() error { return nil }
