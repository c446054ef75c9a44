package kvstore

import (
	"context"
	"encoding/json"
	"errors"
	"strconv"
	"testing"
	"time"

	"github.com/eddyrt/eddy/internal/functions/fnrt"
)

// TestMemoryScopesBound: past maxScopes a new scope is refused with
// kv_limit and changes nothing; existing scopes keep working; scopes whose
// keys all expired are dropped to make room, at most once per sweep
// interval.
func TestMemoryScopesBound(t *testing.T) {
	now := time.Unix(1000, 0)
	m := NewMemory()
	m.now = func() time.Time { return now }
	m.maxScopes = 4
	ctx := context.Background()
	for i := range 4 {
		if err := m.Set(ctx, "s"+strconv.Itoa(i), "k", json.RawMessage(`1`), time.Duration(i+1)*time.Second); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := m.Incr(ctx, "s4", "k", 1); !errors.Is(err, fnrt.ErrKVLimit) {
		t.Fatalf("fifth scope: %v", err)
	}
	if len(m.scopes) != 4 {
		t.Fatalf("a refused scope was kept: %d scopes", len(m.scopes))
	}
	if n, err := m.Incr(ctx, "s0", "n", 1); err != nil || n != 1 {
		t.Fatalf("existing scope: %d %v", n, err)
	}
	// s1's only key expires: the next new scope takes its room once a
	// sweep interval has passed since the last sweep.
	now = now.Add(2500 * time.Millisecond)
	if err := m.Set(ctx, "s5", "k", json.RawMessage(`1`), 0); err != nil {
		t.Fatalf("after s1 expired: %v", err)
	}
	if _, ok := m.scopes["s1"]; ok {
		t.Fatal("the expired scope s1 is still held")
	}
	if err := m.Set(ctx, "s6", "k", json.RawMessage(`1`), 0); !errors.Is(err, fnrt.ErrKVLimit) {
		t.Fatalf("no sweep within the interval, no room: %v", err)
	}
}
