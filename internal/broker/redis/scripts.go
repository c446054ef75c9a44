package redis

import "github.com/redis/rueidis"

// The Lua scripts run atomically in Redis. rueidis sends EVALSHA and falls
// back to EVAL when the server does not know the script (after a restart).
//
// Keys of one channel share the hash tag {channel}, so each script touches a
// single slot. In Redis Cluster the shard channel of SPUBLISH carries the
// same tag (Redis checks that it lies in the script's slot).

// takeoverLua defines takeover(meta): whether this server may lack writes
// of the master that last wrote the channel's meta hash. It records the
// server's replication id in the meta hash (field r). A replica promoted
// by a failover gets a new id and keeps its old master's as
// master_replid2; replication is asynchronous, so it may have missed that
// master's last writes and would hand out their offsets again: the caller
// then starts a new epoch. So a channel last written under another id, on
// a server that was promoted (master_replid2 set), takes a new epoch; this
// also covers a channel nobody touched between two failovers. A restart of
// the same server from its own files leaves master_replid2 empty: its data
// is its own, no new epoch.
const takeoverLua = `
local function takeover(meta)
  local info = redis.call('info', 'replication')
  local id = string.match(info, 'master_replid:(%w+)')
  local r = redis.call('hget', meta, 'r')
  if not id or r == id then return false end
  redis.call('hset', meta, 'r', id)
  if not r then return false end
  local id2 = string.match(info, 'master_replid2:(%w+)')
  return id2 ~= nil and string.match(id2, '^0+$') == nil
end
`

// publishScript numbers, keeps and broadcasts one message.
//
// KEYS[1] meta hash (fields e: epoch, o: top offset), KEYS[2] history stream.
// ARGV[1] pub/sub channel, ARGV[2] message body, ARGV[3] history size,
// ARGV[4] history TTL ms, ARGV[5] meta TTL ms (0: none), ARGV[6] a fresh
// epoch, used when the meta hash is missing (new channel, expired, or lost
// with a Redis restart) or when this server took over from a failed master
// (ARGV[7] "1": check with takeover), ARGV[8] the pub/sub command: publish,
// or spublish in Redis Cluster.
//
// Returns {offset, epoch}.
var publishScript = rueidis.NewLuaScript(publishLua)

const publishLua = takeoverLua + `
local epoch = redis.call('hget', KEYS[1], 'e')
if not epoch then
  epoch = ARGV[6]
  redis.call('hset', KEYS[1], 'e', epoch)
  redis.call('del', KEYS[2])
end
if ARGV[7] == '1' and takeover(KEYS[1]) then
  epoch = ARGV[6]
  redis.call('hset', KEYS[1], 'e', epoch)
end
local off = redis.call('hincrby', KEYS[1], 'o', 1)
local metattl = tonumber(ARGV[5])
if metattl > 0 then redis.call('pexpire', KEYS[1], metattl) end
local size = tonumber(ARGV[3])
if size > 0 then
  redis.call('xadd', KEYS[2], 'MAXLEN', size, off .. '-0', 'd', ARGV[2])
  local ttl = tonumber(ARGV[4])
  if ttl > 0 then
    redis.call('pexpire', KEYS[2], ttl)
  elseif metattl > 0 then
    redis.call('pexpire', KEYS[2], metattl)
  end
else
  redis.call('del', KEYS[2])
end
redis.call(ARGV[8], ARGV[1], 'M' .. off .. ':' .. epoch .. ':' .. ARGV[2])
return {off, epoch}
`

// historyScript reads the position and kept messages of a channel in one
// step, creating the channel's epoch if it has none so that a subscriber of
// a channel nobody has published to yet gets a position that stays valid.
//
// KEYS as publishScript. ARGV[1] a fresh epoch, ARGV[2] meta TTL ms,
// ARGV[3] the epoch of since, ARGV[4] since+1 or "" when there is no since,
// ARGV[5] limit (0: none; negative: no entries, only the position),
// ARGV[6] "1" to start a new epoch after a takeover, as publishScript.
//
// Returns {top, epoch, id1, body1, id2, body2, ...}; the entries are newest
// first when there is no since and a limit, oldest first otherwise. No
// entries are read when since names another epoch or is at or past the top.
var historyScript = rueidis.NewLuaScript(takeoverLua + `
local epoch = redis.call('hget', KEYS[1], 'e')
if not epoch then
  epoch = ARGV[1]
  redis.call('hset', KEYS[1], 'e', epoch, 'o', 0)
  redis.call('del', KEYS[2])
  if ARGV[6] == '1' then takeover(KEYS[1]) end
  local metattl = tonumber(ARGV[2])
  if metattl > 0 then redis.call('pexpire', KEYS[1], metattl) end
  return {'0', epoch}
end
if ARGV[6] == '1' and takeover(KEYS[1]) then
  epoch = ARGV[1]
  redis.call('hset', KEYS[1], 'e', epoch)
end
local top = redis.call('hget', KEYS[1], 'o') or '0'
local out = {top, epoch}
local limit = tonumber(ARGV[5])
if limit < 0 then return out end
local entries
if ARGV[4] ~= '' then
  if ARGV[3] ~= epoch or tonumber(ARGV[4]) > tonumber(top) then return out end
  if limit > 0 then
    entries = redis.call('xrange', KEYS[2], ARGV[4], '+', 'COUNT', limit)
  else
    entries = redis.call('xrange', KEYS[2], ARGV[4], '+')
  end
elseif limit > 0 then
  entries = redis.call('xrevrange', KEYS[2], '+', '-', 'COUNT', limit)
else
  entries = redis.call('xrange', KEYS[2], '-', '+')
end
for i = 1, #entries do
  out[#out + 1] = entries[i][1]
  out[#out + 1] = entries[i][2][2]
end
return out
`)

// addScript stores members with an expiry; it serves presence members and
// node announcements alike.
//
// KEYS[1] hash (field: id, value: JSON), KEYS[2] sorted set (member: id,
// score: expiry in Redis-clock ms). ARGV[1] TTL ms, then id, JSON pairs.
var addScript = rueidis.NewLuaScript(`
local t = redis.call('time')
local exp = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000) + tonumber(ARGV[1])
for i = 2, #ARGV, 2 do
  redis.call('hset', KEYS[1], ARGV[i], ARGV[i + 1])
  redis.call('zadd', KEYS[2], exp, ARGV[i])
end
redis.call('pexpire', KEYS[1], ARGV[1])
redis.call('pexpire', KEYS[2], ARGV[1])
return #ARGV / 2
`)

// dropExpiredLua removes the entries whose expiry passed from the hash
// KEYS[1] and its expiry set KEYS[2]; the member scripts start with it.
const dropExpiredLua = `
local t = redis.call('time')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local gone = redis.call('zrangebyscore', KEYS[2], '-inf', now)
if #gone > 0 then
  redis.call('zremrangebyscore', KEYS[2], '-inf', now)
  for i = 1, #gone, 500 do
    redis.call('hdel', KEYS[1], unpack(gone, i, math.min(i + 499, #gone)))
  end
end
`

// membersScript drops expired entries and returns the rest as a flat
// id, JSON list. KEYS as addScript.
var membersScript = rueidis.NewLuaScript(dropExpiredLua + `
return redis.call('hgetall', KEYS[1])
`)

// membersUpToScript drops expired entries and returns how many remain and
// at most ARGV[1] of them: {total, id1, JSON1, ...}. KEYS as addScript.
var membersUpToScript = rueidis.NewLuaScript(dropExpiredLua + `
local total = redis.call('zcard', KEYS[2])
local out = {tostring(total)}
local max = tonumber(ARGV[1])
if max <= 0 or total == 0 then return out end
local ids = redis.call('zrange', KEYS[2], 0, max - 1)
local vals = redis.call('hmget', KEYS[1], unpack(ids))
for i = 1, #ids do
  if vals[i] then
    out[#out + 1] = ids[i]
    out[#out + 1] = vals[i]
  end
end
return out
`)
