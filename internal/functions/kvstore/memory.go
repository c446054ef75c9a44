package kvstore

import (
	"context"
	"encoding/json"
	"fmt"
	"strconv"
	"sync"
	"time"

	"github.com/eddyrt/eddy/internal/functions/fnrt"
)

// Memory is the key-value store of a single node.
type Memory struct {
	mu     sync.Mutex
	scopes map[string]*memScope
	now    func() time.Time
	// maxScopes bounds len(scopes) (fnrt.MaxKVScopes); lastSweep is when
	// the store last dropped its expired keys to make room for a scope.
	maxScopes int
	lastSweep time.Time
}

type memScope struct {
	keys  map[string]memEntry
	bytes int64 // len(key)+len(value) of every key held
}

type memEntry struct {
	val []byte
	exp time.Time // zero: no expiry
}

var _ fnrt.KV = (*Memory)(nil)

// NewMemory returns an empty store.
func NewMemory() *Memory {
	return &Memory{scopes: map[string]*memScope{}, now: time.Now, maxScopes: fnrt.MaxKVScopes}
}

// lookup returns the live entry of key, removing it when expired. The
// caller holds m.mu.
func (m *Memory) lookup(s *memScope, key string, now time.Time) (memEntry, bool) {
	e, ok := s.keys[key]
	if ok && !e.exp.IsZero() && !now.Before(e.exp) {
		s.remove(key)
		return memEntry{}, false
	}
	return e, ok
}

func (s *memScope) remove(key string) {
	if e, ok := s.keys[key]; ok {
		s.bytes -= int64(len(key) + len(e.val))
		delete(s.keys, key)
	}
}

// sweep drops the expired keys of s: run only when a bound is reached, so
// that expired keys never make a store full.
func (s *memScope) sweep(now time.Time) {
	for k, e := range s.keys {
		if !e.exp.IsZero() && !now.Before(e.exp) {
			s.remove(k)
		}
	}
}

// put stores e under key if the scope's bounds allow it.
func (m *Memory) put(scope, key string, e memEntry, now time.Time) error {
	s := m.scopes[scope]
	if s == nil {
		if err := m.roomForScope(now); err != nil {
			return err
		}
		s = &memScope{keys: map[string]memEntry{}}
		m.scopes[scope] = s
	}
	fits := func() error {
		old, had := s.keys[key]
		n := len(s.keys)
		b := s.bytes + int64(len(key)+len(e.val))
		if had {
			b -= int64(len(key) + len(old.val))
		} else {
			n++
		}
		switch {
		case n > fnrt.MaxKVKeys:
			return keysError(n)
		case b > fnrt.MaxKVScopeBytes:
			return bytesError(b)
		}
		return nil
	}
	if fits() != nil {
		s.sweep(now)
		if err := fits(); err != nil {
			if len(s.keys) == 0 {
				delete(m.scopes, scope)
			}
			return err
		}
	}
	s.remove(key)
	s.keys[key] = e
	s.bytes += int64(len(key) + len(e.val))
	return nil
}

// Get implements fnrt.KV.
func (m *Memory) Get(_ context.Context, scope, key string) (json.RawMessage, bool, error) {
	if err := checkKey(key); err != nil {
		return nil, false, err
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	s := m.scopes[scope]
	if s == nil {
		return nil, false, nil
	}
	e, ok := m.lookup(s, key, m.now())
	if !ok {
		return nil, false, nil
	}
	return json.RawMessage(e.val), true, nil // values are never changed in place
}

// Set implements fnrt.KV.
func (m *Memory) Set(_ context.Context, scope, key string, value json.RawMessage, ttl time.Duration) error {
	if err := checkKey(key); err != nil {
		return err
	}
	if err := checkValue(value); err != nil {
		return err
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	now := m.now()
	e := memEntry{val: append([]byte(nil), value...)}
	if ttl > 0 {
		e.exp = now.Add(ttl)
	}
	return m.put(scope, key, e, now)
}

// Incr implements fnrt.KV.
func (m *Memory) Incr(_ context.Context, scope, key string, by int64) (int64, error) {
	if err := checkKey(key); err != nil {
		return 0, err
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	now := m.now()
	var e memEntry
	if s := m.scopes[scope]; s != nil {
		e, _ = m.lookup(s, key, now)
	}
	n, err := addInt(e.val, by)
	if err != nil {
		return 0, err
	}
	e.val = strconv.AppendInt(nil, n, 10)
	if err := m.put(scope, key, e, now); err != nil {
		return 0, err
	}
	return n, nil
}

// Delete implements fnrt.KV.
func (m *Memory) Delete(_ context.Context, scope, key string) error {
	if err := checkKey(key); err != nil {
		return err
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	if s := m.scopes[scope]; s != nil {
		s.remove(key)
		if len(s.keys) == 0 {
			delete(m.scopes, scope)
		}
	}
	return nil
}

// scopeSweepInterval spaces the sweeps a full store makes to find room
// for a new scope: each walks every key, so a function that keeps asking
// for new scopes must not make every call do it.
const scopeSweepInterval = time.Second

// roomForScope reports whether one more scope fits, first dropping expired
// keys and the scopes they leave empty when the store is full. The caller
// holds m.mu.
func (m *Memory) roomForScope(now time.Time) error {
	if len(m.scopes) < m.maxScopes {
		return nil
	}
	if now.Sub(m.lastSweep) >= scopeSweepInterval {
		m.lastSweep = now
		for name, s := range m.scopes {
			s.sweep(now)
			if len(s.keys) == 0 {
				delete(m.scopes, name)
			}
		}
		if len(m.scopes) < m.maxScopes {
			return nil
		}
	}
	return fmt.Errorf("%w: the store holds %d scopes (functions' own and shared names), the limit is %d", fnrt.ErrKVLimit, len(m.scopes), m.maxScopes)
}
