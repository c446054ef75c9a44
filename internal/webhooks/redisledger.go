package webhooks

import (
	"context"
	"fmt"
	"strconv"
	"time"

	"github.com/redis/rueidis"
)

// Backend is what the Redis ledger and claims need from the Redis broker:
// the client of the shard that holds cluster-wide state, and the key prefix.
type Backend interface {
	ControlClient() (rueidis.Client, string, error)
}

// RedisLedger keeps the cluster's holds in Redis, all on the control
// shard, in three kinds of keys:
//
//	<prefix>:wh:alive        sorted set: node -> expiry (Redis clock, ms)
//	<prefix>:wh:count        hash: field -> how many nodes hold it
//	<prefix>:wh:node:<node>  set: the fields that node holds
//
// Every change is one Lua script, so the hold that takes a count from 0
// to 1 (or the release that takes it to 0) is seen by exactly one node.
// Each Apply renews the node's expiry; a node that stops (crash, cut off)
// is reaped by whichever node calls Reap first after its expiry.
type RedisLedger struct {
	b      Backend
	node   string
	ttl    time.Duration
	prefix string // set on first use
}

// NewRedisLedger returns node's ledger over b; a node whose last Apply is
// older than ttl counts as dead.
func NewRedisLedger(b Backend, node string, ttl time.Duration) *RedisLedger {
	return &RedisLedger{b: b, node: node, ttl: ttl}
}

func (l *RedisLedger) client() (rueidis.Client, string, error) {
	c, prefix, err := l.b.ControlClient()
	if err != nil {
		return nil, "", fmt.Errorf("webhooks ledger: %w", err)
	}
	return c, prefix + ":wh:", nil
}

// nowLua sets now to the Redis clock in ms: one clock for every node.
const nowLua = `
local t = redis.call('time')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
`

// applyScript: KEYS alive, count, this node's set; ARGV node, ttl ms, then
// op ('h' or 'r'), field pairs. Returns {reaped, changed...}.
var applyScript = rueidis.NewLuaScript(nowLua + `
local reaped = redis.call('zadd', KEYS[1], now + tonumber(ARGV[2]), ARGV[1])
local out = {reaped}
for i = 3, #ARGV, 2 do
  local f = ARGV[i + 1]
  local changed = 0
  if ARGV[i] == 'h' then
    if redis.call('sadd', KEYS[3], f) == 1 and redis.call('hincrby', KEYS[2], f, 1) == 1 then
      changed = 1
    end
  elseif redis.call('srem', KEYS[3], f) == 1 then
    if redis.call('hincrby', KEYS[2], f, -1) <= 0 then
      redis.call('hdel', KEYS[2], f)
      changed = 1
    end
  end
  out[#out + 1] = changed
end
return out
`)

// releaseAllLua releases every field of the set in key lk and appends to
// out those whose count reached 0.
const releaseAllLua = `
local function releaseAll(lk, out)
  for _, f in ipairs(redis.call('smembers', lk)) do
    if redis.call('hincrby', KEYS[2], f, -1) <= 0 then
      redis.call('hdel', KEYS[2], f)
      out[#out + 1] = f
    end
  end
  redis.call('del', lk)
end
`

// reapScript: KEYS alive, count; ARGV the prefix of node sets, how many
// dead nodes to reap at most. The node sets are named from the alive set,
// so they are not in KEYS: the control shard is one Redis, never a Redis
// Cluster (the broker forces single-instance clients).
var reapScript = rueidis.NewLuaScript(nowLua + releaseAllLua + `
local dead = redis.call('zrangebyscore', KEYS[1], '-inf', now, 'LIMIT', 0, tonumber(ARGV[2]))
local out = {}
for _, n in ipairs(dead) do
  releaseAll(ARGV[1] .. n, out)
  redis.call('zrem', KEYS[1], n)
end
return out
`)

// leaveScript: KEYS alive, count, this node's set; ARGV node.
var leaveScript = rueidis.NewLuaScript(releaseAllLua + `
local out = {}
releaseAll(KEYS[3], out)
redis.call('zrem', KEYS[1], ARGV[1])
return out
`)

func (l *RedisLedger) keys(p string) []string {
	return []string{p + "alive", p + "count", p + "node:" + l.node}
}

// Apply implements Ledger.
func (l *RedisLedger) Apply(ctx context.Context, ops []Op) ([]bool, bool, error) {
	c, p, err := l.client()
	if err != nil {
		return nil, false, err
	}
	args := make([]string, 0, 2+2*len(ops))
	args = append(args, l.node, strconv.FormatInt(l.ttl.Milliseconds(), 10))
	for _, op := range ops {
		o := "r"
		if op.Hold {
			o = "h"
		}
		args = append(args, o, op.Field)
	}
	res, err := applyScript.Exec(ctx, c, l.keys(p), args).AsIntSlice()
	if err != nil {
		return nil, false, fmt.Errorf("webhooks ledger: apply: %w", err)
	}
	if len(res) != 1+len(ops) {
		return nil, false, fmt.Errorf("webhooks ledger: apply: %d results for %d ops", len(res)-1, len(ops))
	}
	changed := make([]bool, len(ops))
	for i := range ops {
		changed[i] = res[1+i] == 1
	}
	return changed, res[0] == 1, nil
}

// Reap implements Ledger.
func (l *RedisLedger) Reap(ctx context.Context) ([]string, error) {
	c, p, err := l.client()
	if err != nil {
		return nil, err
	}
	out, err := reapScript.Exec(ctx, c, l.keys(p)[:2], []string{p + "node:", "16"}).AsStrSlice()
	if err != nil {
		return nil, fmt.Errorf("webhooks ledger: reap: %w", err)
	}
	return out, nil
}

// Leave implements Ledger.
func (l *RedisLedger) Leave(ctx context.Context) ([]string, error) {
	c, p, err := l.client()
	if err != nil {
		return nil, err
	}
	out, err := leaveScript.Exec(ctx, c, l.keys(p), []string{l.node}).AsStrSlice()
	if err != nil {
		return nil, fmt.Errorf("webhooks ledger: leave: %w", err)
	}
	return out, nil
}

// RedisClaims is the Claimer of a cluster: a key set with NX and an expiry.
type RedisClaims struct{ b Backend }

// NewRedisClaims returns claims over b.
func NewRedisClaims(b Backend) *RedisClaims { return &RedisClaims{b: b} }

// Claim implements Claimer.
func (r *RedisClaims) Claim(ctx context.Context, key string, ttl time.Duration) (bool, error) {
	c, prefix, err := r.b.ControlClient()
	if err != nil {
		return false, fmt.Errorf("webhooks claim: %w", err)
	}
	err = c.Do(ctx, c.B().Set().Key(prefix+":wh:claim:"+key).Value("1").Nx().Px(ttl).Build()).Error()
	if rueidis.IsRedisNil(err) {
		return false, nil
	}
	if err != nil {
		return false, fmt.Errorf("webhooks claim %s: %w", key, err)
	}
	return true, nil
}
