package fnrt

import (
	"context"
	"encoding/json"
	"errors"
	"time"
)

// KV is the key-value store functions reach through ctx.kv. Values are
// JSON. A scope (see KVScope) is one function's keys, or the keys a group
// of functions share by name; each scope is bounded by KVLimits, and an
// operation that would go past a bound fails with an error wrapping
// ErrKVLimit and changes nothing. Incr is atomic: concurrent increments of
// one key from any VM of any node all count. Implementations must be safe
// for concurrent use.
type KV interface {
	// Get returns the value of key, or ok false when it is missing or
	// expired.
	Get(ctx context.Context, scope, key string) (value json.RawMessage, ok bool, err error)
	// Set stores value (valid JSON) under key; ttl > 0 makes it expire.
	Set(ctx context.Context, scope, key string, value json.RawMessage, ttl time.Duration) error
	// Incr adds by to the integer under key (a missing key counts as 0)
	// and returns the new value; the key keeps its expiry.
	Incr(ctx context.Context, scope, key string, by int64) (int64, error)
	// Delete removes key; a missing key is not an error.
	Delete(ctx context.Context, scope, key string) error
}

// Bounds of the key-value store.
const (
	MaxKVKeyBytes   = 512      // one key: room for a prefix and a channel name
	MaxKVValueBytes = 64 << 10 // one value, as JSON
	MaxKVKeys       = 10_000   // keys of one scope
	MaxKVScopeBytes = 8 << 20  // keys plus values of one scope
	MaxKVNameBytes  = 64       // the name of a shared scope
	// MaxKVScopes bounds the scopes one node's in-memory store holds (every
	// function's own scope and every shared name in use): shared names
	// are chosen at run time, so without it a function could create
	// scopes without end.
	MaxKVScopes = 4096
	// MaxKVInt bounds integers Incr produces: JavaScript numbers are exact
	// up to 2^53.
	MaxKVInt = 1<<53 - 1
)

// ErrKVLimit is wrapped by key-value errors of an operation that would
// take a key, a value or a scope past its bound.
var ErrKVLimit = errors.New("kv_limit: function exceeded its key-value store limits")

// ErrKVNotInteger is wrapped by Incr errors on a key that holds something
// else than an integer.
var ErrKVNotInteger = errors.New("value is not an integer")

// DefaultApp is the app every function belongs to until Eddy has apps.
const DefaultApp = "default"

// KVScope names the scope of a function's own keys, or, with shared set,
// the scope that functions of app share under that name.
func KVScope(app, function, shared string) string {
	if shared != "" {
		return app + "/shared/" + shared
	}
	return app + "/fn/" + function
}

// ErrFetchLimit is wrapped by ctx.fetch errors of a call past a bound
// (calls per invocation, body sizes, redirects).
var ErrFetchLimit = errors.New("fetch_limit: function exceeded its outbound HTTP limits")

// ErrFetchRefused is wrapped by ctx.fetch errors of a call to a host off
// the function's allow_hosts, or to a non-public address.
var ErrFetchRefused = errors.New("fetch_refused: outbound HTTP target not allowed")
