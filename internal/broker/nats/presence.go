package nats

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/eddyrt/eddy/internal/protocol"
)

// Presence lives in a KV bucket whose entries expire after PresenceTTL;
// each node puts its own members again every PresenceTTL/3, so a crashed
// node's members go by themselves. A member is the key
// <channel token>.<conn token>.

// localMembers are the members this node added and has not removed.
type localMembers struct {
	// putMu is held around each refresh put and each removal, so that a
	// refresh never puts back a member removed meanwhile.
	putMu sync.Mutex
	mu    sync.Mutex
	m     map[string]protocol.Member // by key
	kick  chan struct{}
}

func (l *localMembers) init() {
	l.m = map[string]protocol.Member{}
	l.kick = make(chan struct{}, 1)
}

func (l *localMembers) kickRefresh() {
	select {
	case l.kick <- struct{}{}:
	default:
	}
}

func memberKey(channel, conn string) string { return token(channel) + "." + token(conn) }

func (b *Broker) bucket() (jetstream.KeyValue, error) {
	if r := b.kv.Load(); r != nil && b.ensured.Load() {
		return r.kv, nil
	}
	return nil, errors.New("not connected")
}

// AddMember stores m as a member of channel (replacing an entry of the same
// connection) and keeps it fresh until RemoveMember or Close.
func (b *Broker) AddMember(ctx context.Context, channel string, m protocol.Member) error {
	kv, err := b.bucket()
	if err != nil {
		return unavailable("add member", err)
	}
	js, err := json.Marshal(m)
	if err != nil {
		return fmt.Errorf("nats broker: add member: %w", err)
	}
	key := memberKey(channel, m.Conn)
	b.presence.mu.Lock()
	b.presence.m[key] = m
	b.presence.mu.Unlock()
	if _, err := kv.Put(ctx, key, js); err != nil {
		return unavailable("add member", err)
	}
	return nil
}

// RemoveMember removes the member of channel that is connection conn.
func (b *Broker) RemoveMember(ctx context.Context, channel string, conn string) error {
	key := memberKey(channel, conn)
	b.presence.putMu.Lock()
	defer b.presence.putMu.Unlock()
	b.presence.mu.Lock()
	delete(b.presence.m, key)
	b.presence.mu.Unlock()
	kv, err := b.bucket()
	if err != nil {
		return unavailable("remove member", err)
	}
	if err := kv.Delete(ctx, key); err != nil {
		return unavailable("remove member", err)
	}
	return nil
}

// Members lists channel's members from the bucket.
func (b *Broker) Members(ctx context.Context, channel string) ([]protocol.Member, error) {
	kv, err := b.bucket()
	if err != nil {
		return nil, unavailable("members", err)
	}
	entries, err := readAll(ctx, kv, token(channel)+".*")
	if err != nil {
		return nil, unavailable("members", err)
	}
	out := make([]protocol.Member, 0, len(entries))
	for _, e := range entries {
		var m protocol.Member
		if err := json.Unmarshal(e.Value(), &m); err != nil {
			return nil, fmt.Errorf("nats broker: member %s: %w", e.Key(), err)
		}
		out = append(out, m)
	}
	return out, nil
}

// refreshLoop puts this node's members again every PresenceTTL/3, and at
// once after a reconnect (the server may have lost them).
func (b *Broker) refreshLoop(ctx context.Context) {
	t := time.NewTicker(b.opts.PresenceTTL / 3)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		case <-b.presence.kick:
		}
		kv, err := b.bucket()
		if err != nil {
			continue
		}
		b.presence.mu.Lock()
		all := make(map[string]protocol.Member, len(b.presence.m))
		for k, m := range b.presence.m {
			all[k] = m
		}
		b.presence.mu.Unlock()
		for k, m := range all {
			if err := b.refreshOne(ctx, kv, k, m); err != nil {
				b.log.Warn("refresh presence", "err", err)
				break
			}
		}
	}
}

func (b *Broker) refreshOne(ctx context.Context, kv jetstream.KeyValue, key string, m protocol.Member) error {
	b.presence.putMu.Lock()
	defer b.presence.putMu.Unlock()
	b.presence.mu.Lock()
	_, still := b.presence.m[key]
	b.presence.mu.Unlock()
	if !still {
		return nil
	}
	js, err := json.Marshal(m)
	if err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(ctx, opTimeout)
	defer cancel()
	_, err = kv.Put(ctx, key, js)
	return err
}
