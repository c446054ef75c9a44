package kvstore_test

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	redisbroker "github.com/eddyrt/eddy/internal/broker/redis"
	"github.com/eddyrt/eddy/internal/broker/redis/redistest"
	"github.com/eddyrt/eddy/internal/functions/fnrt"
	"github.com/eddyrt/eddy/internal/functions/kvstore"
)

// stores runs f on the memory store and on a Redis store over a real
// redis-server.
func stores(t *testing.T, f func(t *testing.T, kv fnrt.KV)) {
	t.Run("memory", func(t *testing.T) { f(t, kvstore.NewMemory()) })
	t.Run("redis", func(t *testing.T) {
		srv := redistest.Start(t)
		rb, err := redisbroker.New(redisbroker.Options{Addrs: []string{srv.URL()}, Logger: slog.New(slog.NewTextHandler(io.Discard, nil))})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { rb.Close() })
		f(t, kvstore.NewRedis(rb))
	})
}

func TestKVOperations(t *testing.T) {
	stores(t, func(t *testing.T, kv fnrt.KV) {
		ctx := context.Background()
		if _, ok, err := kv.Get(ctx, "s", "a"); ok || err != nil {
			t.Fatalf("get missing: %v %v", ok, err)
		}
		if err := kv.Set(ctx, "s", "a", json.RawMessage(`{"x":[1,2]}`), 0); err != nil {
			t.Fatal(err)
		}
		if v, ok, err := kv.Get(ctx, "s", "a"); !ok || err != nil || string(v) != `{"x":[1,2]}` {
			t.Fatalf("get: %s %v %v", v, ok, err)
		}
		// Scopes are separate.
		if _, ok, _ := kv.Get(ctx, "other", "a"); ok {
			t.Fatal("key visible in another scope")
		}
		if n, err := kv.Incr(ctx, "s", "n", 5); n != 5 || err != nil {
			t.Fatalf("incr new: %d %v", n, err)
		}
		if n, err := kv.Incr(ctx, "s", "n", -7); n != -2 || err != nil {
			t.Fatalf("incr: %d %v", n, err)
		}
		if _, err := kv.Incr(ctx, "s", "a", 1); !errors.Is(err, fnrt.ErrKVNotInteger) {
			t.Fatalf("incr of an object: %v", err)
		}
		if n, err := kv.Incr(ctx, "s", "max", fnrt.MaxKVInt); n != fnrt.MaxKVInt || err != nil {
			t.Fatalf("incr to 2^53-1: %d %v", n, err)
		}
		if _, err := kv.Incr(ctx, "s", "max", 1); !errors.Is(err, fnrt.ErrKVLimit) {
			t.Fatalf("incr past 2^53: %v", err)
		}
		if err := kv.Delete(ctx, "s", "a"); err != nil {
			t.Fatal(err)
		}
		if _, ok, _ := kv.Get(ctx, "s", "a"); ok {
			t.Fatal("deleted key still there")
		}
		if err := kv.Delete(ctx, "s", "never"); err != nil {
			t.Fatalf("delete missing: %v", err)
		}
		if err := kv.Set(ctx, "s", "bad", json.RawMessage(`{`), 0); err == nil {
			t.Fatal("invalid JSON stored")
		}
		// A key with a TTL goes away; incr keeps the TTL.
		if err := kv.Set(ctx, "s", "t", json.RawMessage(`1`), 50*time.Millisecond); err != nil {
			t.Fatal(err)
		}
		if n, err := kv.Incr(ctx, "s", "t", 1); n != 2 || err != nil {
			t.Fatalf("incr ttl key: %d %v", n, err)
		}
		deadline := time.Now().Add(10 * time.Second)
		for {
			if _, ok, _ := kv.Get(ctx, "s", "t"); !ok {
				break
			}
			if time.Now().After(deadline) {
				t.Fatal("key with ttl never expired")
			}
			time.Sleep(10 * time.Millisecond)
		}
	})
}

// TestKVBounds: a scope takes MaxKVKeys keys and MaxKVScopeBytes bytes;
// past either the operation fails with ErrKVLimit and changes nothing,
// other scopes are not affected, and deleting makes room again.
func TestKVBounds(t *testing.T) {
	stores(t, func(t *testing.T, kv fnrt.KV) {
		ctx := context.Background()
		if err := kv.Set(ctx, "s", strings.Repeat("k", fnrt.MaxKVKeyBytes+1), json.RawMessage(`1`), 0); !errors.Is(err, fnrt.ErrKVLimit) {
			t.Fatalf("long key: %v", err)
		}
		big := json.RawMessage(`"` + strings.Repeat("x", fnrt.MaxKVValueBytes) + `"`)
		if err := kv.Set(ctx, "s", "big", big, 0); !errors.Is(err, fnrt.ErrKVLimit) {
			t.Fatalf("big value: %v", err)
		}
		for i := range fnrt.MaxKVKeys {
			if _, err := kv.Incr(ctx, "keys", strconv.Itoa(i), 1); err != nil {
				t.Fatalf("key %d: %v", i, err)
			}
		}
		if _, err := kv.Incr(ctx, "keys", "one-more", 1); !errors.Is(err, fnrt.ErrKVLimit) || !strings.Contains(err.Error(), "keys") {
			t.Fatalf("key past the bound: %v", err)
		}
		if _, ok, _ := kv.Get(ctx, "keys", "one-more"); ok {
			t.Fatal("refused key was stored")
		}
		if n, err := kv.Incr(ctx, "keys", "0", 1); n != 2 || err != nil {
			t.Fatalf("existing key of a full scope: %d %v", n, err)
		}
		if _, err := kv.Incr(ctx, "elsewhere", "a", 1); err != nil {
			t.Fatalf("another scope: %v", err)
		}
		if err := kv.Delete(ctx, "keys", "0"); err != nil {
			t.Fatal(err)
		}
		if _, err := kv.Incr(ctx, "keys", "one-more", 1); err != nil {
			t.Fatalf("after a delete: %v", err)
		}

		val := json.RawMessage(`"` + strings.Repeat("x", fnrt.MaxKVValueBytes-100) + `"`)
		var i int
		var err error
		for i = 0; i < fnrt.MaxKVScopeBytes/len(val)+2; i++ {
			if err = kv.Set(ctx, "bytes", strconv.Itoa(i), val, 0); err != nil {
				break
			}
		}
		if !errors.Is(err, fnrt.ErrKVLimit) || !strings.Contains(err.Error(), "bytes") || i != fnrt.MaxKVScopeBytes/(len(val)+2) && i != fnrt.MaxKVScopeBytes/(len(val)+1) {
			t.Fatalf("bytes bound after %d values: %v", i, err)
		}
		// Replacing a value by a smaller one fits.
		if err := kv.Set(ctx, "bytes", "0", json.RawMessage(`1`), 0); err != nil {
			t.Fatal(err)
		}
		// Expired keys do not count against the bound.
		for i := range fnrt.MaxKVKeys {
			if err := kv.Set(ctx, "ttl", strconv.Itoa(i), json.RawMessage(`1`), 20*time.Millisecond); err != nil {
				t.Fatal(err)
			}
		}
		deadline := time.Now().Add(10 * time.Second)
		for kv.Set(ctx, "ttl", "new", json.RawMessage(`1`), 0) != nil {
			if time.Now().After(deadline) {
				t.Fatal("expired keys still fill the scope")
			}
			time.Sleep(10 * time.Millisecond)
		}
	})
}

// TestKVIncrIsAtomic: concurrent increments through several clients all
// count (for Redis, several broker connections stand for several nodes).
func TestKVIncrIsAtomic(t *testing.T) {
	stores(t, func(t *testing.T, kv fnrt.KV) {
		ctx := context.Background()
		var wg sync.WaitGroup
		for range 8 {
			wg.Add(1)
			go func() {
				defer wg.Done()
				for range 250 {
					if _, err := kv.Incr(ctx, "s", "n", 1); err != nil {
						t.Error(err)
						return
					}
				}
			}()
		}
		wg.Wait()
		if v, _, _ := kv.Get(ctx, "s", "n"); string(v) != "2000" {
			t.Fatalf("count %s, want 2000", v)
		}
	})
}
