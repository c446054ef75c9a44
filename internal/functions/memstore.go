package functions

import (
	"context"
	"maps"
	"slices"
	"sync"
)

// MemoryStore is a Store that keeps everything in memory: for tests and
// for servers run without a data directory.
type MemoryStore struct {
	mu     sync.Mutex
	funcs  map[string]Function
	assocs map[string]Association
}

// NewMemoryStore returns an empty MemoryStore.
func NewMemoryStore() *MemoryStore {
	return &MemoryStore{funcs: map[string]Function{}, assocs: map[string]Association{}}
}

func (m *MemoryStore) LoadAll(context.Context) ([]Function, []Association, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	fns := make([]Function, 0, len(m.funcs))
	for _, f := range m.funcs {
		fns = append(fns, cloneFunction(f))
	}
	as := make([]Association, 0, len(m.assocs))
	for _, a := range m.assocs {
		a.Functions = slices.Clone(a.Functions)
		as = append(as, a)
	}
	return fns, as, nil
}

func (m *MemoryStore) PutFunction(_ context.Context, fn Function) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	fn.Env = maps.Clone(fn.Env)
	m.funcs[fn.Name] = fn
	return nil
}

func (m *MemoryStore) DeleteFunction(_ context.Context, name string) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	delete(m.funcs, name)
	return nil
}

func (m *MemoryStore) PutAssociation(_ context.Context, a Association) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	a.Functions = slices.Clone(a.Functions)
	m.assocs[a.Pattern] = a
	return nil
}

func (m *MemoryStore) DeleteAssociation(_ context.Context, pattern string) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	delete(m.assocs, pattern)
	return nil
}

var _ Store = (*MemoryStore)(nil)
