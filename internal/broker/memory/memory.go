// Package memory is the embedded single-node broker: channel streams,
// history and presence live in this process and are lost when it stops,
// which a fresh epoch tells recovering clients.
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

// stream is one channel's numbering and its kept history, a ring buffer.
type stream struct {
	top   uint64
	ring  []*protocol.Message
	first int // index of the oldest kept message in ring
	n     int // kept messages
}

var (
	_ broker.Broker        = (*Broker)(nil)
	_ broker.PresenceStore = (*Broker)(nil)
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
		st.keep(m, opts.HistorySize)
	} else if st.n > 0 {
		st.ring, st.first, st.n = nil, 0, 0 // history was switched off
	}
	if b.handler != nil {
		b.handler.HandleMessage(m)
	}
	return protocol.Position{Epoch: b.epoch, Offset: st.top}, nil
}

func (st *stream) keep(m *protocol.Message, size int) {
	if len(st.ring) != size {
		st.resize(size)
	}
	if st.n < size {
		st.ring[(st.first+st.n)%size] = m
		st.n++
		return
	}
	st.ring[st.first] = m
	st.first = (st.first + 1) % size
}

func (st *stream) resize(size int) {
	kept := st.messages()
	if len(kept) > size {
		kept = kept[len(kept)-size:]
	}
	st.ring = make([]*protocol.Message, size)
	copy(st.ring, kept)
	st.first, st.n = 0, len(kept)
}

// messages returns the kept messages, oldest first.
func (st *stream) messages() []*protocol.Message {
	out := make([]*protocol.Message, 0, st.n)
	for i := 0; i < st.n; i++ {
		out = append(out, st.ring[(st.first+i)%len(st.ring)])
	}
	return out
}

// Subscribe is a no-op: one node receives every channel.
func (b *Broker) Subscribe(context.Context, string) error { return nil }

// Unsubscribe is a no-op: one node receives every channel.
func (b *Broker) Unsubscribe(context.Context, string) error { return nil }

// History implements broker.Broker.
func (b *Broker) History(_ context.Context, channel string, q broker.HistoryQuery) ([]*protocol.Message, protocol.Position, error) {
	since, limit, ttl := q.Since, q.Limit, q.Options.HistoryTTL
	s := b.shard(channel)
	s.mu.Lock()
	var top uint64
	var kept []*protocol.Message
	if st := s.streams[channel]; st != nil {
		top = st.top
		kept = st.messages()
	}
	s.mu.Unlock()
	pos := protocol.Position{Epoch: b.epoch, Offset: top}
	if ttl > 0 {
		cutoff := b.now().Add(-ttl).UnixMilli()
		i := sort.Search(len(kept), func(i int) bool { return kept[i].TS >= cutoff })
		kept = kept[i:]
	}
	if limit < 0 && since == nil {
		return nil, pos, nil
	}
	if since != nil {
		if since.Epoch != b.epoch || since.Offset > top {
			return nil, pos, broker.ErrGap
		}
		if since.Offset < top {
			// Everything after since must still be kept: the oldest kept
			// message must be since+1 or older.
			if len(kept) == 0 || kept[0].Offset > since.Offset+1 {
				return nil, pos, broker.ErrGap
			}
		}
		i := sort.Search(len(kept), func(i int) bool { return kept[i].Offset > since.Offset })
		kept = kept[i:]
	}
	if limit < 0 {
		return nil, pos, nil
	}
	if limit > 0 && len(kept) > limit {
		if since != nil {
			kept = kept[:limit]
		} else {
			kept = kept[len(kept)-limit:]
		}
	}
	return kept, pos, nil
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

// Close implements broker.Broker.
func (b *Broker) Close() error { return nil }
