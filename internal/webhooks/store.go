package webhooks

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"

	"github.com/eddyrt/eddy/internal/config"
)

// Store keeps the webhooks added through the admin API (those of eddy.yaml
// are not stored: the file is their place).
type Store interface {
	List(ctx context.Context) ([]config.Webhook, error)
	Put(ctx context.Context, w config.Webhook) error
	// Delete removes the entry with id; ErrNotFound when there is none.
	Delete(ctx context.Context, id string) error
}

// ErrNotFound is returned for a webhook id that does not exist.
var ErrNotFound = errors.New("no such webhook")

// Topic is the cluster notification sent after a stored webhook changed.
const Topic = "webhooks"

// FileStore keeps the webhooks in one JSON file (data_dir/webhooks.json),
// readable by its owner only: it holds the receivers' secrets.
type FileStore struct {
	path string
	mu   sync.Mutex
}

// NewFileStore returns a store in dir, creating dir if needed.
func NewFileStore(dir string) (*FileStore, error) {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, fmt.Errorf("webhooks store: %w", err)
	}
	return &FileStore{path: filepath.Join(dir, "webhooks.json")}, nil
}

func (s *FileStore) read() ([]config.Webhook, error) {
	b, err := os.ReadFile(s.path)
	if errors.Is(err, os.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("webhooks store: %w", err)
	}
	var out []config.Webhook
	if err := json.Unmarshal(b, &out); err != nil {
		return nil, fmt.Errorf("webhooks store %s: %w", s.path, err)
	}
	return out, nil
}

// write replaces the file whole (write a temporary file, then rename), so
// a crash leaves the old list or the new one.
func (s *FileStore) write(list []config.Webhook) error {
	b, err := json.MarshalIndent(list, "", "  ")
	if err != nil {
		return fmt.Errorf("webhooks store: %w", err)
	}
	tmp, err := os.CreateTemp(filepath.Dir(s.path), ".webhooks-*.json")
	if err != nil {
		return fmt.Errorf("webhooks store: %w", err)
	}
	defer os.Remove(tmp.Name())
	if _, err := tmp.Write(b); err != nil {
		tmp.Close()
		return fmt.Errorf("webhooks store: %w", err)
	}
	if err := tmp.Sync(); err != nil {
		tmp.Close()
		return fmt.Errorf("webhooks store: %w", err)
	}
	if err := tmp.Close(); err != nil {
		return fmt.Errorf("webhooks store: %w", err)
	}
	if err := os.Rename(tmp.Name(), s.path); err != nil {
		return fmt.Errorf("webhooks store: %w", err)
	}
	return nil
}

// List implements Store.
func (s *FileStore) List(context.Context) ([]config.Webhook, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.read()
}

// Put implements Store.
func (s *FileStore) Put(_ context.Context, w config.Webhook) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	list, err := s.read()
	if err != nil {
		return err
	}
	list = slices.DeleteFunc(list, func(x config.Webhook) bool { return x.ID == w.ID })
	return s.write(append(list, w))
}

// Delete implements Store.
func (s *FileStore) Delete(_ context.Context, id string) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	list, err := s.read()
	if err != nil {
		return err
	}
	n := len(list)
	list = slices.DeleteFunc(list, func(x config.Webhook) bool { return x.ID == id })
	if len(list) == n {
		return fmt.Errorf("%w: %q", ErrNotFound, id)
	}
	return s.write(list)
}

// Notifier tells every node of a change (the Redis broker's Notify).
type Notifier interface {
	Notify(ctx context.Context, topic string, payload []byte) error
}

// RedisStore keeps the webhooks in one Redis hash on the control shard
// (<prefix>:webhooks, id -> JSON) and notifies every node after a change.
type RedisStore struct {
	b Backend
	n Notifier
}

// NewRedisStore returns a store over b, notifying through n.
func NewRedisStore(b Backend, n Notifier) *RedisStore { return &RedisStore{b: b, n: n} }

func (s *RedisStore) hash() (string, error) {
	_, prefix, err := s.b.ControlClient()
	if err != nil {
		return "", fmt.Errorf("webhooks store: %w", err)
	}
	return prefix + ":webhooks", nil
}

// List implements Store. An entry that does not decode is skipped and
// named in the error, so one bad entry does not silence the others.
func (s *RedisStore) List(ctx context.Context) ([]config.Webhook, error) {
	c, _, err := s.b.ControlClient()
	if err != nil {
		return nil, fmt.Errorf("webhooks store: %w", err)
	}
	h, _ := s.hash()
	m, err := c.Do(ctx, c.B().Hgetall().Key(h).Build()).AsStrMap()
	if err != nil {
		return nil, fmt.Errorf("webhooks store: list: %w", err)
	}
	var out []config.Webhook
	var bad []string
	for id, v := range m {
		var w config.Webhook
		if err := json.Unmarshal([]byte(v), &w); err != nil {
			bad = append(bad, id)
			continue
		}
		out = append(out, w)
	}
	if bad != nil {
		return out, fmt.Errorf("webhooks store: entries %s do not decode", strings.Join(bad, ", "))
	}
	return out, nil
}

// Put implements Store.
func (s *RedisStore) Put(ctx context.Context, w config.Webhook) error {
	b, err := json.Marshal(w)
	if err != nil {
		return fmt.Errorf("webhooks store: %w", err)
	}
	c, _, err := s.b.ControlClient()
	if err != nil {
		return fmt.Errorf("webhooks store: %w", err)
	}
	h, _ := s.hash()
	if err := c.Do(ctx, c.B().Hset().Key(h).FieldValue().FieldValue(w.ID, string(b)).Build()).Error(); err != nil {
		return fmt.Errorf("webhooks store: save %s: %w", w.ID, err)
	}
	return s.notify(ctx, "save "+w.ID)
}

// Delete implements Store.
func (s *RedisStore) Delete(ctx context.Context, id string) error {
	c, _, err := s.b.ControlClient()
	if err != nil {
		return fmt.Errorf("webhooks store: %w", err)
	}
	h, _ := s.hash()
	n, err := c.Do(ctx, c.B().Hdel().Key(h).Field(id).Build()).AsInt64()
	if err != nil {
		return fmt.Errorf("webhooks store: delete %s: %w", id, err)
	}
	if n == 0 {
		return fmt.Errorf("%w: %q", ErrNotFound, id)
	}
	return s.notify(ctx, "delete "+id)
}

// notify tells the other nodes; the change is already saved, so a failed
// notice only delays it until their next reload.
func (s *RedisStore) notify(ctx context.Context, what string) error {
	if err := s.n.Notify(ctx, Topic, nil); err != nil {
		return fmt.Errorf("webhooks store: %s saved, but notifying the other nodes failed: %w", what, err)
	}
	return nil
}
