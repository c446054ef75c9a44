package apps

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"sync"
)

// Store keeps apps. Every method is atomic for its app; Create and Update
// decide existence in the store itself, so two nodes creating the same id
// cannot both succeed.
type Store interface {
	Load(ctx context.Context) ([]*App, error)
	// Create adds a; ErrExists when its id is taken.
	Create(ctx context.Context, a *App) error
	// Update replaces the app with a's id; ErrNotFound when there is none.
	Update(ctx context.Context, a *App) error
	// Delete removes the app; ErrNotFound when there is none.
	Delete(ctx context.Context, id string) error
}

// ErrExists and ErrNotFound are a Store's answers about an id.
var (
	ErrExists   = errors.New("app already exists")
	ErrNotFound = errors.New("no such app")
)

// FileStore keeps apps in one JSON file (data_dir/apps.json), for a single
// node. Writes go to a temporary file renamed over the old one, so a crash
// leaves the old set or the new one, never half of either.
type FileStore struct {
	path string
	mu   sync.Mutex
}

// NewFileStore keeps apps in dir/apps.json; dir is created if missing.
func NewFileStore(dir string) (*FileStore, error) {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, fmt.Errorf("apps store: %w", err)
	}
	return &FileStore{path: filepath.Join(dir, "apps.json")}, nil
}

func (s *FileStore) read() (map[string]*App, error) {
	b, err := os.ReadFile(s.path)
	if errors.Is(err, os.ErrNotExist) {
		return map[string]*App{}, nil
	}
	if err != nil {
		return nil, fmt.Errorf("apps store: %w", err)
	}
	m := map[string]*App{}
	if err := json.Unmarshal(b, &m); err != nil {
		return nil, fmt.Errorf("apps store %s: %w", s.path, err)
	}
	return m, nil
}

func (s *FileStore) write(m map[string]*App) error {
	b, err := json.MarshalIndent(m, "", "  ")
	if err != nil {
		return fmt.Errorf("apps store: %w", err)
	}
	tmp := s.path + ".tmp"
	if err := os.WriteFile(tmp, b, 0o600); err != nil {
		return fmt.Errorf("apps store: %w", err)
	}
	if err := os.Rename(tmp, s.path); err != nil {
		return fmt.Errorf("apps store: %w", err)
	}
	return nil
}

// Load implements Store.
func (s *FileStore) Load(context.Context) ([]*App, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	m, err := s.read()
	if err != nil {
		return nil, err
	}
	out := make([]*App, 0, len(m))
	for _, a := range m {
		out = append(out, a)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].ID < out[j].ID })
	return out, nil
}

func (s *FileStore) change(id string, exists bool, f func(m map[string]*App)) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	m, err := s.read()
	if err != nil {
		return err
	}
	if _, ok := m[id]; ok != exists {
		if ok {
			return ErrExists
		}
		return ErrNotFound
	}
	f(m)
	return s.write(m)
}

// Create implements Store.
func (s *FileStore) Create(_ context.Context, a *App) error {
	return s.change(a.ID, false, func(m map[string]*App) { m[a.ID] = a })
}

// Update implements Store.
func (s *FileStore) Update(_ context.Context, a *App) error {
	return s.change(a.ID, true, func(m map[string]*App) { m[a.ID] = a })
}

// Delete implements Store.
func (s *FileStore) Delete(_ context.Context, id string) error {
	return s.change(id, true, func(m map[string]*App) { delete(m, id) })
}

// MemStore keeps apps in memory, for a server built without a store
// (tests, embedding): they last until the process ends.
type MemStore struct {
	mu   sync.Mutex
	apps map[string]*App
}

// NewMemStore returns an empty memory store.
func NewMemStore() *MemStore { return &MemStore{apps: map[string]*App{}} }

// Load implements Store.
func (s *MemStore) Load(context.Context) ([]*App, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make([]*App, 0, len(s.apps))
	for _, a := range s.apps {
		out = append(out, a)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].ID < out[j].ID })
	return out, nil
}

func (s *MemStore) change(id string, exists bool, f func()) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if _, ok := s.apps[id]; ok != exists {
		if ok {
			return ErrExists
		}
		return ErrNotFound
	}
	f()
	return nil
}

// Create implements Store.
func (s *MemStore) Create(_ context.Context, a *App) error {
	return s.change(a.ID, false, func() { s.apps[a.ID] = a })
}

// Update implements Store.
func (s *MemStore) Update(_ context.Context, a *App) error {
	return s.change(a.ID, true, func() { s.apps[a.ID] = a })
}

// Delete implements Store.
func (s *MemStore) Delete(_ context.Context, id string) error {
	return s.change(id, true, func() { delete(s.apps, id) })
}
