package secrets

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sync"

	"github.com/redis/rueidis"
)

// FileStore keeps sealed secrets in one JSON file of the data dir,
// readable only by the server's user, replaced atomically on each change.
type FileStore struct {
	path string
	mu   sync.Mutex
}

// NewFileStore returns a store in dir/secrets.json.
func NewFileStore(dir string) (*FileStore, error) {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, fmt.Errorf("secrets dir: %w", err)
	}
	return &FileStore{path: filepath.Join(dir, "secrets.json")}, nil
}

// Load implements Store.
func (f *FileStore) Load(context.Context) (map[string][]byte, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.read()
}

func (f *FileStore) read() (map[string][]byte, error) {
	raw, err := os.ReadFile(f.path)
	if errors.Is(err, os.ErrNotExist) {
		return map[string][]byte{}, nil
	}
	if err != nil {
		return nil, err
	}
	m := map[string][]byte{}
	if err := json.Unmarshal(raw, &m); err != nil {
		return nil, fmt.Errorf("%s: %w", f.path, err)
	}
	return m, nil
}

func (f *FileStore) change(apply func(map[string][]byte)) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	m, err := f.read()
	if err != nil {
		return err
	}
	apply(m)
	raw, err := json.Marshal(m)
	if err != nil {
		return err
	}
	tmp, err := os.CreateTemp(filepath.Dir(f.path), ".secrets-*")
	if err != nil {
		return err
	}
	defer os.Remove(tmp.Name())
	if _, err := tmp.Write(raw); err != nil {
		tmp.Close()
		return err
	}
	if err := tmp.Sync(); err != nil {
		tmp.Close()
		return err
	}
	if err := tmp.Close(); err != nil {
		return err
	}
	return os.Rename(tmp.Name(), f.path)
}

// Put implements Store.
func (f *FileStore) Put(_ context.Context, name string, sealed []byte) error {
	return f.change(func(m map[string][]byte) { m[name] = sealed })
}

// Delete implements Store.
func (f *FileStore) Delete(_ context.Context, name string) error {
	return f.change(func(m map[string][]byte) { delete(m, name) })
}

// Backend is what the Redis store needs from the Redis broker.
type Backend interface {
	ControlClient() (rueidis.Client, string, error)
	Notify(ctx context.Context, topic string, payload []byte) error
}

// RedisStore keeps sealed secrets in one Redis hash and, on each change,
// notifies the other nodes on topic (the functions store's, whose
// listeners reload the engine and with it the vault).
type RedisStore struct {
	b     Backend
	topic string
}

// NewRedisStore returns a store over b.
func NewRedisStore(b Backend, topic string) *RedisStore { return &RedisStore{b: b, topic: topic} }

func (s *RedisStore) key() (rueidis.Client, string, error) {
	c, prefix, err := s.b.ControlClient()
	if err != nil {
		return nil, "", fmt.Errorf("secrets store: %w", err)
	}
	return c, prefix + ":secrets", nil
}

// Load implements Store.
func (s *RedisStore) Load(ctx context.Context) (map[string][]byte, error) {
	c, k, err := s.key()
	if err != nil {
		return nil, err
	}
	m, err := c.Do(ctx, c.B().Hgetall().Key(k).Build()).AsStrMap()
	if err != nil {
		return nil, err
	}
	out := make(map[string][]byte, len(m))
	for n, v := range m {
		out[n] = []byte(v)
	}
	return out, nil
}

func (s *RedisStore) write(ctx context.Context, build func(c rueidis.Client, k string) rueidis.Completed) error {
	c, k, err := s.key()
	if err != nil {
		return err
	}
	if err := c.Do(ctx, build(c, k)).Error(); err != nil {
		return err
	}
	if err := s.b.Notify(ctx, s.topic, nil); err != nil {
		return fmt.Errorf("saved, but notifying the other nodes failed: %w", err)
	}
	return nil
}

// Put implements Store.
func (s *RedisStore) Put(ctx context.Context, name string, sealed []byte) error {
	return s.write(ctx, func(c rueidis.Client, k string) rueidis.Completed {
		return c.B().Hset().Key(k).FieldValue().FieldValue(name, string(sealed)).Build()
	})
}

// Delete implements Store.
func (s *RedisStore) Delete(ctx context.Context, name string) error {
	return s.write(ctx, func(c rueidis.Client, k string) rueidis.Completed {
		return c.B().Hdel().Key(k).Field(name).Build()
	})
}

// MemoryStore keeps sealed secrets in memory: for `eddy functions test`,
// which runs a function without a server.
type MemoryStore struct {
	mu sync.Mutex
	m  map[string][]byte
}

// NewMemoryStore returns an empty store.
func NewMemoryStore() *MemoryStore { return &MemoryStore{m: map[string][]byte{}} }

// Load implements Store.
func (s *MemoryStore) Load(context.Context) (map[string][]byte, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make(map[string][]byte, len(s.m))
	for k, v := range s.m {
		out[k] = v
	}
	return out, nil
}

// Put implements Store.
func (s *MemoryStore) Put(_ context.Context, name string, sealed []byte) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.m[name] = sealed
	return nil
}

// Delete implements Store.
func (s *MemoryStore) Delete(_ context.Context, name string) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	delete(s.m, name)
	return nil
}
