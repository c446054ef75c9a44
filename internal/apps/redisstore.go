package apps

import (
	"context"
	"encoding/json"
	"fmt"
	"sort"

	"github.com/redis/rueidis"
)

// Topic is the cluster notification sent after every change of an app, so
// every node reloads its registry.
const Topic = "apps"

// RedisBackend is what RedisStore needs from the Redis broker.
type RedisBackend interface {
	ControlClient() (rueidis.Client, string, error)
	Notify(ctx context.Context, topic string, payload []byte) error
}

// RedisStore keeps apps in one Redis hash (id → JSON) for cluster mode,
// and notifies every node after each change.
type RedisStore struct{ b RedisBackend }

// NewRedisStore returns a store over b.
func NewRedisStore(b RedisBackend) *RedisStore { return &RedisStore{b: b} }

func (s *RedisStore) key() (rueidis.Client, string, error) {
	c, prefix, err := s.b.ControlClient()
	if err != nil {
		return nil, "", fmt.Errorf("apps store: %w", err)
	}
	return c, prefix + ":apps", nil
}

// Load implements Store. An entry that does not decode is left out and
// reported, so one bad entry cannot stop a node from serving the rest.
func (s *RedisStore) Load(ctx context.Context) ([]*App, error) {
	c, k, err := s.key()
	if err != nil {
		return nil, err
	}
	m, err := c.Do(ctx, c.B().Hgetall().Key(k).Build()).AsStrMap()
	if err != nil {
		return nil, fmt.Errorf("load apps: %w", err)
	}
	out := make([]*App, 0, len(m))
	var bad error
	for id, v := range m {
		var a App
		if err := json.Unmarshal([]byte(v), &a); err != nil || a.ID != id {
			bad = fmt.Errorf("load apps: entry %q does not decode", id)
			continue
		}
		out = append(out, &a)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].ID < out[j].ID })
	return out, bad
}

// updateScript replaces a field only when it exists: an update never
// brings back an app another node deleted.
var updateScript = rueidis.NewLuaScript(`if redis.call('HEXISTS', KEYS[1], ARGV[1]) == 1 then redis.call('HSET', KEYS[1], ARGV[1], ARGV[2]) return 1 end return 0`)

func (s *RedisStore) write(ctx context.Context, a *App, create bool) error {
	c, k, err := s.key()
	if err != nil {
		return err
	}
	b, err := json.Marshal(a)
	if err != nil {
		return fmt.Errorf("apps store: %w", err)
	}
	var n int64
	if create {
		n, err = c.Do(ctx, c.B().Hsetnx().Key(k).Field(a.ID).Value(string(b)).Build()).AsInt64()
	} else {
		n, err = updateScript.Exec(ctx, c, []string{k}, []string{a.ID, string(b)}).AsInt64()
	}
	if err != nil {
		return fmt.Errorf("apps store: %w", err)
	}
	if n == 0 {
		if create {
			return ErrExists
		}
		return ErrNotFound
	}
	return s.notify(ctx)
}

func (s *RedisStore) notify(ctx context.Context) error {
	if err := s.b.Notify(ctx, Topic, nil); err != nil {
		return fmt.Errorf("apps store: saved, but notifying the other nodes failed (they reload when their Redis connection returns): %w", err)
	}
	return nil
}

// Create implements Store.
func (s *RedisStore) Create(ctx context.Context, a *App) error { return s.write(ctx, a, true) }

// Update implements Store.
func (s *RedisStore) Update(ctx context.Context, a *App) error { return s.write(ctx, a, false) }

// Delete implements Store.
func (s *RedisStore) Delete(ctx context.Context, id string) error {
	c, k, err := s.key()
	if err != nil {
		return err
	}
	n, err := c.Do(ctx, c.B().Hdel().Key(k).Field(id).Build()).AsInt64()
	if err != nil {
		return fmt.Errorf("apps store: %w", err)
	}
	if n == 0 {
		return ErrNotFound
	}
	return s.notify(ctx)
}
