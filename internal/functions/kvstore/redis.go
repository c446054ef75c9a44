package kvstore

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/redis/rueidis"

	"github.com/eddyrt/eddy/internal/functions/fnrt"
)

// Backend is what the Redis store needs from the Redis broker.
type Backend interface {
	ControlClient() (rueidis.Client, string, error)
}

// Redis is the key-value store of a cluster: every node sees the same keys
// and Incr is atomic across nodes. A scope is three hashes under one hash
// tag: values, expiry times (unix ms) and the scope's byte count. Each
// operation is one Lua script, so the bounds hold under concurrency.
type Redis struct{ b Backend }

var _ fnrt.KV = (*Redis)(nil)

// NewRedis returns a store over b's control connection.
func NewRedis(b Backend) *Redis { return &Redis{b: b} }

// kvLib is shared by the scripts: expiry on access, removal with byte
// accounting, and the bound check that sweeps expired keys first.
const kvLib = `
local H, E, M = KEYS[1], KEYS[2], KEYS[3]
local function remove(k)
  local len = redis.call('HSTRLEN', H, k)
  if redis.call('HDEL', H, k) == 1 then
    redis.call('HINCRBY', M, 'bytes', -(#k + len))
  end
  redis.call('HDEL', E, k)
end
local function live(k, now)
  local exp = redis.call('HGET', E, k)
  if exp and tonumber(exp) <= now then remove(k) end
  return redis.call('HGET', H, k)
end
local function fits(k, newlen, maxkeys, maxbytes)
  local had = redis.call('HEXISTS', H, k) == 1
  local n = redis.call('HLEN', H)
  local b = tonumber(redis.call('HGET', M, 'bytes') or '0') + #k + newlen
  if had then b = b - #k - redis.call('HSTRLEN', H, k) else n = n + 1 end
  if n > maxkeys then return 'keys ' .. n end
  if b > maxbytes then return 'bytes ' .. b end
  return nil
end
local function store(k, v, exp, now, maxkeys, maxbytes)
  local over = fits(k, #v, maxkeys, maxbytes)
  if over then
    local all = redis.call('HGETALL', E)
    for i = 1, #all, 2 do
      if tonumber(all[i+1]) <= now then remove(all[i]) end
    end
    over = fits(k, #v, maxkeys, maxbytes)
    if over then return over end
  end
  remove(k)
  redis.call('HSET', H, k, v)
  redis.call('HINCRBY', M, 'bytes', #k + #v)
  if exp > 0 then redis.call('HSET', E, k, exp) end
  return nil
end
`

// ARGV: key, now.
var getScript = rueidis.NewLuaScript(kvLib + `
return live(ARGV[1], tonumber(ARGV[2]))
`)

// ARGV: key, value, expiry (unix ms, 0: none), now, max keys, max bytes.
// Returns nil, or the bound exceeded ("keys N", "bytes N").
var setScript = rueidis.NewLuaScript(kvLib + `
return store(ARGV[1], ARGV[2], tonumber(ARGV[3]), tonumber(ARGV[4]), tonumber(ARGV[5]), tonumber(ARGV[6]))
`)

// ARGV: key, by, now, max keys, max bytes, max int. Returns {n} or
// {false, reason}; the key keeps its expiry.
var incrScript = rueidis.NewLuaScript(kvLib + `
local k, now = ARGV[1], tonumber(ARGV[3])
local cur = live(k, now)
local n = 0
if cur then
  if not string.match(cur, '^-?%d+$') then return {0, 'notint ' .. string.sub(cur, 1, 40)} end
  n = tonumber(cur)
end
n = n + tonumber(ARGV[2])
if math.abs(n) > tonumber(ARGV[6]) then return {0, 'range ' .. string.format('%.0f', n)} end
local exp = tonumber(redis.call('HGET', E, k) or '0')
local over = store(k, string.format('%d', n), exp, now, tonumber(ARGV[4]), tonumber(ARGV[5]))
if over then return {0, over} end
return {string.format('%d', n)}
`)

// ARGV: key.
var deleteScript = rueidis.NewLuaScript(kvLib + `
remove(ARGV[1])
return 0
`)

func (r *Redis) keys(scope string) (rueidis.Client, []string, error) {
	c, prefix, err := r.b.ControlClient()
	if err != nil {
		return nil, nil, fmt.Errorf("kv store: %w", err)
	}
	// The hash tag keeps a scope's three keys in one Redis Cluster slot.
	base := prefix + ":kv:{" + scope + "}:"
	return c, []string{base + "v", base + "e", base + "m"}, nil
}

func nowMS() string { return strconv.FormatInt(time.Now().UnixMilli(), 10) }

// overError turns a script's "keys N" / "bytes N" into the limit error.
func overError(s string) error {
	what, n, _ := strings.Cut(s, " ")
	v, _ := strconv.ParseInt(n, 10, 64)
	switch what {
	case "keys":
		return keysError(int(v))
	case "bytes":
		return bytesError(v)
	case "notint":
		return fmt.Errorf("%w: %s", fnrt.ErrKVNotInteger, n)
	case "range":
		return fmt.Errorf("%w: the result %s is outside ±2^53", fnrt.ErrKVLimit, n)
	}
	return fmt.Errorf("kv store: unexpected answer %q", s)
}

// Get implements fnrt.KV.
func (r *Redis) Get(ctx context.Context, scope, key string) (json.RawMessage, bool, error) {
	if err := checkKey(key); err != nil {
		return nil, false, err
	}
	c, keys, err := r.keys(scope)
	if err != nil {
		return nil, false, err
	}
	s, err := getScript.Exec(ctx, c, keys, []string{key, nowMS()}).ToString()
	if rueidis.IsRedisNil(err) {
		return nil, false, nil
	}
	if err != nil {
		return nil, false, fmt.Errorf("kv get: %w", err)
	}
	return json.RawMessage(s), true, nil
}

// Set implements fnrt.KV.
func (r *Redis) Set(ctx context.Context, scope, key string, value json.RawMessage, ttl time.Duration) error {
	if err := checkKey(key); err != nil {
		return err
	}
	if err := checkValue(value); err != nil {
		return err
	}
	c, keys, err := r.keys(scope)
	if err != nil {
		return err
	}
	now := time.Now().UnixMilli()
	var exp int64
	if ttl > 0 {
		exp = now + max(ttl.Milliseconds(), 1)
	}
	s, err := setScript.Exec(ctx, c, keys, []string{key, string(value), strconv.FormatInt(exp, 10),
		strconv.FormatInt(now, 10), strconv.Itoa(fnrt.MaxKVKeys), strconv.Itoa(fnrt.MaxKVScopeBytes)}).ToString()
	if rueidis.IsRedisNil(err) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("kv set: %w", err)
	}
	return overError(s)
}

// Incr implements fnrt.KV.
func (r *Redis) Incr(ctx context.Context, scope, key string, by int64) (int64, error) {
	if err := checkKey(key); err != nil {
		return 0, err
	}
	if by > fnrt.MaxKVInt || by < -fnrt.MaxKVInt {
		return 0, fmt.Errorf("increment %d is outside ±2^53", by)
	}
	c, keys, err := r.keys(scope)
	if err != nil {
		return 0, err
	}
	res, err := incrScript.Exec(ctx, c, keys, []string{key, strconv.FormatInt(by, 10), nowMS(),
		strconv.Itoa(fnrt.MaxKVKeys), strconv.Itoa(fnrt.MaxKVScopeBytes), strconv.FormatInt(fnrt.MaxKVInt, 10)}).ToArray()
	if err != nil {
		return 0, fmt.Errorf("kv incr: %w", err)
	}
	if len(res) == 2 {
		s, _ := res[1].ToString()
		return 0, overError(s)
	}
	if len(res) != 1 {
		return 0, errors.New("kv incr: unexpected answer")
	}
	s, err := res[0].ToString()
	if err != nil {
		return 0, fmt.Errorf("kv incr: %w", err)
	}
	return strconv.ParseInt(s, 10, 64)
}

// Delete implements fnrt.KV.
func (r *Redis) Delete(ctx context.Context, scope, key string) error {
	if err := checkKey(key); err != nil {
		return err
	}
	c, keys, err := r.keys(scope)
	if err != nil {
		return err
	}
	if err := deleteScript.Exec(ctx, c, keys, []string{key}).Error(); err != nil {
		return fmt.Errorf("kv delete: %w", err)
	}
	return nil
}
