package redis

import (
	"context"
	"encoding/json"
	"fmt"
	"sort"
	"strconv"
	"sync"
	"time"

	"github.com/redis/rueidis"

	"github.com/eddyrt/eddy/internal/protocol"
)

// Presence lives in two keys per channel on the channel's shard: a hash
// conn -> member JSON and a sorted set conn -> expiry. Each node refreshes
// the expiry of the members it added every PresenceTTL/3, so the members of
// a node that died vanish within PresenceTTL; expired members are dropped
// when the channel is read. Both keys also expire PresenceTTL after the
// last write, so an abandoned channel leaves nothing behind.

// localMembers are the members this node added and must keep refreshed.
type localMembers struct {
	mu     sync.Mutex
	byChan map[string]map[string]string // channel -> conn -> member JSON
	wake   chan struct{}
}

func (l *localMembers) init() {
	l.byChan = make(map[string]map[string]string)
	l.wake = make(chan struct{}, 1)
}

func (l *localMembers) add(channel, conn, js string) {
	l.mu.Lock()
	defer l.mu.Unlock()
	m := l.byChan[channel]
	if m == nil {
		m = make(map[string]string)
		l.byChan[channel] = m
	}
	m[conn] = js
}

func (l *localMembers) remove(channel, conn string) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if m := l.byChan[channel]; m != nil {
		delete(m, conn)
		if len(m) == 0 {
			delete(l.byChan, channel)
		}
	}
}

// kick asks for a refresh now, e.g. after a shard came back.
func (l *localMembers) kick() {
	select {
	case l.wake <- struct{}{}:
	default:
	}
}

// AddMember implements broker.PresenceStore. The member is kept refreshed
// by this node until RemoveMember, also when this call fails because Redis
// is down: it reappears with the next refresh after Redis is back.
func (b *Broker) AddMember(ctx context.Context, channel string, m protocol.Member) error {
	js, err := json.Marshal(m)
	if err != nil {
		return fmt.Errorf("redis broker: encode member: %w", err)
	}
	b.presence.add(channel, m.Conn, string(js))
	c, err := b.shardFor(channel).client()
	if err != nil {
		return unavailable("add member", err)
	}
	_, err = retryConn(ctx, func() (struct{}, error) {
		return struct{}{}, addScript.Exec(ctx, c, []string{b.presenceKey(channel), b.presenceExp(channel)},
			[]string{ms(b.opts.PresenceTTL), m.Conn, string(js)}).Error()
	})
	if err != nil {
		return unavailable("add member", err)
	}
	return nil
}

// RemoveMember implements broker.PresenceStore.
func (b *Broker) RemoveMember(ctx context.Context, channel, conn string) error {
	b.presence.remove(channel, conn)
	c, err := b.shardFor(channel).client()
	if err != nil {
		return unavailable("remove member", err)
	}
	return b.removeEntry(ctx, c, b.presenceKey(channel), b.presenceExp(channel), conn)
}

func (b *Broker) removeEntry(ctx context.Context, c rueidis.Client, hash, exp, id string) error {
	_, err := retryConn(ctx, func() (struct{}, error) {
		for _, r := range c.DoMulti(ctx,
			c.B().Hdel().Key(hash).Field(id).Build(),
			c.B().Zrem().Key(exp).Member(id).Build(),
		) {
			if err := r.Error(); err != nil {
				return struct{}{}, err
			}
		}
		return struct{}{}, nil
	})
	if err != nil {
		return unavailable("remove", err)
	}
	return nil
}

// Members implements broker.PresenceStore, ordered by connection id.
func (b *Broker) Members(ctx context.Context, channel string) ([]protocol.Member, error) {
	c, err := b.shardFor(channel).client()
	if err != nil {
		return nil, unavailable("members", err)
	}
	kv, err := b.liveEntries(ctx, c, b.presenceKey(channel), b.presenceExp(channel))
	if err != nil {
		return nil, unavailable("members", err)
	}
	out := make([]protocol.Member, 0, len(kv)/2)
	for i := 1; i < len(kv); i += 2 {
		var m protocol.Member
		if err := json.Unmarshal([]byte(kv[i]), &m); err != nil {
			return nil, fmt.Errorf("redis broker: member %q of %q: %w", kv[i-1], channel, err)
		}
		out = append(out, m)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Conn < out[j].Conn })
	return out, nil
}

// MembersUpTo returns at most max members of channel, ordered by
// connection id, and how many it has, without reading the whole set: the
// subscribed reply of a big channel needs only a sample.
func (b *Broker) MembersUpTo(ctx context.Context, channel string, max int) ([]protocol.Member, int, error) {
	c, err := b.shardFor(channel).client()
	if err != nil {
		return nil, 0, unavailable("members", err)
	}
	kv, err := retryConn(ctx, func() ([]string, error) {
		return membersUpToScript.Exec(ctx, c, []string{b.presenceKey(channel), b.presenceExp(channel)}, []string{strconv.Itoa(max)}).AsStrSlice()
	})
	if err != nil {
		return nil, 0, unavailable("members", err)
	}
	total, _ := strconv.Atoi(kv[0])
	out := make([]protocol.Member, 0, (len(kv)-1)/2)
	for i := 2; i < len(kv); i += 2 {
		var m protocol.Member
		if err := json.Unmarshal([]byte(kv[i]), &m); err != nil {
			return nil, 0, fmt.Errorf("redis broker: member %q of %q: %w", kv[i-1], channel, err)
		}
		out = append(out, m)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Conn < out[j].Conn })
	return out, total, nil
}

// liveEntries drops expired entries and returns the rest, id, JSON, ...
func (b *Broker) liveEntries(ctx context.Context, c rueidis.Client, hash, exp string) ([]string, error) {
	return retryConn(ctx, func() ([]string, error) {
		return membersScript.Exec(ctx, c, []string{hash, exp}, nil).AsStrSlice()
	})
}

// PublishPresence sends ev through the channel's pub/sub channel to every
// node subscribed to it, this one included.
func (b *Broker) PublishPresence(ctx context.Context, ev *protocol.PresenceEvent) error {
	payload, err := encodePresence(ev)
	if err != nil {
		return fmt.Errorf("redis broker: encode presence: %w", err)
	}
	c, err := b.shardFor(ev.Channel).client()
	if err != nil {
		return unavailable("publish presence", err)
	}
	cmd := c.B().Publish().Channel(b.pubsubName(ev.Channel)).Message(rueidis.BinaryString(payload)).Build()
	if b.cluster != nil {
		// Sharded: only to the nodes subscribed at the channel's master.
		cmd = c.B().Spublish().Channel(b.pubsubName(ev.Channel)).Message(rueidis.BinaryString(payload)).Build()
	}
	if err := c.Do(ctx, cmd).Error(); err != nil {
		return unavailable("publish presence", err)
	}
	return nil
}

// refreshLoop re-adds this node's members every PresenceTTL/3, at once
// when a shard reconnects, and again soon after a refresh failed.
func (b *Broker) refreshLoop(ctx context.Context) {
	every := b.opts.PresenceTTL / 3
	retry := min(every, 500*time.Millisecond)
	t := time.NewTimer(every)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		case <-b.presence.wake:
			t.Stop()
		}
		if b.refresh(ctx) {
			t.Reset(every)
		} else {
			t.Reset(retry)
		}
	}
}

const refreshBatch = 256 // members per script call

// refresh re-adds every local member and reports whether all writes
// succeeded.
func (b *Broker) refresh(ctx context.Context) bool {
	ttl := ms(b.opts.PresenceTTL)
	perShard := make(map[*shard][]rueidis.LuaExec)
	b.presence.mu.Lock()
	for channel, members := range b.presence.byChan {
		s := b.shardFor(channel)
		keys := []string{b.presenceKey(channel), b.presenceExp(channel)}
		args := []string{ttl}
		for conn, js := range members {
			args = append(args, conn, js)
			if len(args) >= 1+2*refreshBatch {
				perShard[s] = append(perShard[s], rueidis.LuaExec{Keys: keys, Args: args})
				args = []string{ttl}
			}
		}
		if len(args) > 1 {
			perShard[s] = append(perShard[s], rueidis.LuaExec{Keys: keys, Args: args})
		}
	}
	b.presence.mu.Unlock()
	ok := true
	for s, execs := range perShard {
		c, err := s.client()
		if err != nil {
			ok = false
			continue
		}
		for len(execs) > 0 {
			n := min(len(execs), 128)
			rctx, cancel := context.WithTimeout(ctx, b.opts.PresenceTTL/3)
			_, err := retryConn(rctx, func() (struct{}, error) {
				for _, r := range addScript.ExecMulti(rctx, c, execs[:n]...) {
					if err := r.Error(); err != nil {
						return struct{}{}, err
					}
				}
				return struct{}{}, nil
			})
			cancel()
			if err != nil {
				b.log.Warn("presence refresh failed", "shard", s.name, "err", err)
				ok = false
				break
			}
			execs = execs[n:]
		}
	}
	return ok
}
