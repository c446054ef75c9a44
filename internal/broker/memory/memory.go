// Package memory is the embedded single-node broker: channel streams,
// history and presence live in this process and are lost when it stops,
// which a fresh epoch tells recovering clients.
//
// What it keeps (history.go): every channel ever published to keeps its
// offset counter for the life of the process, since offsets must never
// restart within an epoch (about 70 B of heap for a short name, measured
// by TestEmptyChannelCost). Kept messages past history_ttl are dropped by a
// sweeper every SweepInterval (and when the channel is published to or
// read), and all history together is bounded by MaxHistoryBytes: past it
// the channels published to longest ago lose their history first, so a
// client recovering from one learns recovered:false. Presence entries go
// when their connection leaves.
package memory

import (
	"context"
	"crypto/rand"
	"encoding/base32"
	"hash/maphash"
	"sort"
	"sync"
	"sync/atomic"
	"time"

	"github.com/eddyrt/eddy/internal/broker"
	"github.com/eddyrt/eddy/internal/protocol"
)

const shardCount = 64

// DefaultSweepInterval is how often expired history is swept when Options leave it 0.
const DefaultSweepInterval = 5 * time.Second

// Options tune a memory broker; the zero value is usable.
type Options struct {
	// MaxHistoryBytes bounds the history kept by all channels together
	// (0: no bound). Past it, the channels published to longest ago lose
	// their whole history, oldest first, until the total is under it.
	MaxHistoryBytes int64
	// SweepInterval is how often messages past their channel's
	// history_ttl are dropped (0: DefaultSweepInterval).
	SweepInterval time.Duration
}

// Broker is the in-memory broker. The zero value is not usable; call New.
type Broker struct {
	epoch   string
	seed    maphash.Seed
	handler broker.Handler
	now     func() time.Time
	shards  [shardCount]shard

	maxBytes   int64
	sweepEvery time.Duration
	bytes      atomic.Int64  // history kept, all channels
	evicted    atomic.Uint64 // channels whose history MaxHistoryBytes evicted
	evictMu    sync.Mutex    // one evictor at a time; others go on publishing
	stop       chan struct{}
	stopOnce   sync.Once
	sweeping   sync.WaitGroup
}

type shard struct {
	mu       sync.Mutex
	streams  map[string]*stream
	presence map[string]map[string]protocol.Member // channel -> conn -> member
	// Channels with history, by last publish: eviction takes the oldest.
	oldest, newest *stream
}

var (
	_ broker.Broker        = (*Broker)(nil)
	_ broker.PresenceStore = (*Broker)(nil)
	_ broker.MemberSampler = (*Broker)(nil)
)

// New returns an in-memory broker with a fresh epoch and default options.
func New() *Broker { return NewWithOptions(Options{}) }

// NewWithOptions returns an in-memory broker with a fresh epoch.
func NewWithOptions(o Options) *Broker {
	b := &Broker{epoch: newEpoch(), seed: maphash.MakeSeed(), now: time.Now,
		maxBytes: o.MaxHistoryBytes, sweepEvery: o.SweepInterval, stop: make(chan struct{})}
	if b.sweepEvery <= 0 {
		b.sweepEvery = DefaultSweepInterval
	}
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

// Start records the handler (the memory broker delivers synchronously)
// and starts the history sweeper, which Close stops.
func (b *Broker) Start(_ context.Context, h broker.Handler) error {
	b.handler = h
	b.sweeping.Add(1)
	go b.sweepLoop()
	return nil
}

// Publish numbers m, keeps it and hands it to the handler, all under the
// channel's shard lock so that delivery order is offset order. When the
// history kept by all channels passes MaxHistoryBytes it then evicts the
// oldest, outside the lock.
func (b *Broker) Publish(_ context.Context, m *protocol.Message, opts broker.ChannelOptions) (protocol.Position, error) {
	s := b.shard(m.Channel)
	s.mu.Lock()
	st := s.streams[m.Channel]
	if st == nil {
		st = &stream{}
		s.streams[m.Channel] = st
	}
	st.top++
	m.Offset = st.top
	m.Epoch = b.epoch
	var delta int64
	if opts.HistorySize > 0 {
		now := b.now()
		delta -= s.expire(st, opts.HistoryTTL, now)
		if st.h == nil {
			st.h = &history{channel: m.Channel}
			s.link(st)
		}
		delta += st.h.keep(m, now, opts.HistorySize)
		s.touch(st, now, opts.HistoryTTL)
	} else {
		delta -= s.dropHistory(st) // history was switched off
	}
	total := b.bytes.Add(delta)
	if b.handler != nil {
		b.handler.HandleMessage(m)
	}
	pos := protocol.Position{Epoch: b.epoch, Offset: st.top}
	s.mu.Unlock()
	if b.maxBytes > 0 && total > b.maxBytes {
		b.evict()
	}
	return pos, nil
}

// evict drops the history of the channels published to longest ago until
// the total is within MaxHistoryBytes. The oldest is found by comparing
// the oldest of each shard, one shard lock at a time, so publishes go on.
func (b *Broker) evict() {
	if !b.evictMu.TryLock() {
		return // another publisher is evicting
	}
	defer b.evictMu.Unlock()
	for b.bytes.Load() > b.maxBytes {
		victim, oldest := -1, int64(0)
		for i := range b.shards {
			s := &b.shards[i]
			s.mu.Lock()
			if s.oldest != nil && (victim < 0 || s.oldest.h.last < oldest) {
				victim, oldest = i, s.oldest.h.last
			}
			s.mu.Unlock()
		}
		if victim < 0 {
			return
		}
		s := &b.shards[victim]
		s.mu.Lock()
		if st := s.oldest; st != nil {
			b.bytes.Add(-s.dropHistory(st))
			b.evicted.Add(1)
		}
		s.mu.Unlock()
	}
}

// sweepLoop drops expired history every sweepEvery until Close.
func (b *Broker) sweepLoop() {
	defer b.sweeping.Done()
	t := time.NewTicker(b.sweepEvery)
	defer t.Stop()
	for {
		select {
		case <-b.stop:
			return
		case <-t.C:
			b.sweep()
		}
	}
}

// sweep drops every kept message past its channel's history_ttl, so a
// channel that went quiet does not hold its history until it is read.
func (b *Broker) sweep() {
	for i := range b.shards {
		s := &b.shards[i]
		s.mu.Lock()
		now := b.now()
		var freed int64
		for st := s.oldest; st != nil; {
			next := st.h.next
			freed += s.expire(st, st.h.ttl, now)
			st = next
		}
		b.bytes.Add(-freed)
		s.mu.Unlock()
	}
}

// HistoryStats is what the broker holds, for metrics and tests.
type HistoryStats struct {
	Channels    int    // channels ever published to (each keeps its counter)
	WithHistory int    // channels holding kept messages
	Bytes       int64  // what the kept messages cost, all channels
	Evicted     uint64 // channels whose history MaxHistoryBytes evicted
}

// Stats counts what the broker holds now.
func (b *Broker) Stats() HistoryStats {
	st := HistoryStats{Bytes: b.bytes.Load(), Evicted: b.evicted.Load()}
	for i := range b.shards {
		s := &b.shards[i]
		s.mu.Lock()
		st.Channels += len(s.streams)
		for x := s.oldest; x != nil; x = x.h.next {
			st.WithHistory++
		}
		s.mu.Unlock()
	}
	return st
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
		b.bytes.Add(-s.expire(st, q.Options.HistoryTTL, b.now()))
		top = st.top
		if st.h != nil {
			kept = st.h.n
		}
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
		out = append(out, st.h.entry(i).m)
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

// Close stops the sweeper.
func (b *Broker) Close() error {
	b.stopOnce.Do(func() { close(b.stop) })
	b.sweeping.Wait()
	return nil
}
