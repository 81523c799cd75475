package redisstore

import "github.com/redis/go-redis/v9"

// The operations batchScript runs, by the names it takes in ARGV. Each
// declares its keys (KEYS) ahead of its arguments; on a Redis Cluster a
// batch is split by the keys' hash slot (see flushCluster), so an
// operation's keys must share one slot: a job's keys carry its key as hash
// tag, a user's ledger keys a hash of the user, a message id's reference
// its own, and a rate cell is an operation's only key.
const (
	opAdmit    = "admit"
	opReserve  = "reserve"
	opUnclaim  = "unclaim"
	opMarkSent = "sent"
	opFail     = "fail"
	opRelease  = "release"
	opDecide   = "decide"
	opLegacy   = "legacy"

	opSubGet     = "sub_get"
	opSubTake    = "sub_take"
	opSubApply   = "sub_apply"
	opSubExhaust = "sub_exhaust"
	opRefPut     = "ref_put"
	opRefJoin    = "ref_join"
)

// batchScript runs a batch of job operations in order. A script runs
// atomically, so TIME is read once and is the clock of every operation.
//
// ARGV holds each operation's name followed by its arguments, KEYS each
// operation's keys, both in batch order. The reply holds one element per
// operation, in the same order: its result, or an error reply if it failed,
// and then the TIME the batch ran at, in µs. A failed operation does not
// stop the ones after it.
//
// A job's hash holds, while it is in flight: s (lease|idle|dead), o
// (owner), l (lease end, µs), f (first claim, µs), a (attempts), x (owner
// whose failure was counted last); once sent, only q (stream sequence), m
// (msgid), n (attempts it took) and t (sent at, µs): the field t marks it
// sent. Those four are what a later delivery of the job needs, and small
// integers a small hash keeps packed.
//
// admit checks the job's dedup state, reserves a GCRA slot and takes the
// lease, in one step.
//
//	KEYS  job hash, rate cell (ignored when the interval is 0; then the
//	      job hash again, so that both lie in one slot)
//	ARGV  owner, lease µs, ttl ms, emission interval µs (0: no limit),
//	      burst, max wait µs
//	reply {status, wait µs from the batch's TIME, attempts, first claim µs};
//	      status 0 claimed, then also 1 if this claim is the job's first
//	      (nothing was recorded for it before), else 0;
//	      2 busy (leased by another owner), 3 throttled;
//	      already sent: {1, 0, attempts, sent at µs, stream sequence, msgid};
//	      decided: {4, 0, attempts, first claim µs, reason, code, message, field}
//
// reserve reserves a GCRA slot alone: on a Redis Cluster a rate cell and a
// job lie in different slots, so admit there claims the job with no
// interval, then reserves (see Store.Admit).
//
//	KEYS  rate cell
//	ARGV  emission interval µs, burst, max wait µs
//	reply {0, wait µs} reserved, or {3, wait µs} beyond the max wait,
//	      nothing reserved
//
// unclaim gives back a lease admit took whose reservation then failed:
// as release, and a first claim leaves no state behind.
//
//	KEYS  job hash
//	ARGV  owner, 1 if the claim was the job's first, else 0
//	reply 1
//
// sent marks the job sent and drops what only a job in flight needs. The
// expiry admit set stays: it already runs to at least the dedup TTL after
// the lease ends. A hash that vanished meanwhile is created with the TTL.
//
//	KEYS  job hash
//	ARGV  ttl ms, stream sequence, msgid, attempts, accepted at µs
//	reply 1
//
// fail counts an attempt and releases the lease if owner holds it. An
// owner is one delivery, which makes one call: a second fail from it (the
// client ran the batch again after losing its reply) counts nothing, and
// neither does a fail after the job was sent.
//
//	KEYS  job hash
//	ARGV  owner, ttl ms (restored if the hash lost its expiry)
//	reply the attempts so far
//
// release releases the lease if owner holds it.
//
//	KEYS  job hash
//	ARGV  owner
//	reply 1
//
// decide records a dead letter that could not be stored, so that no later
// delivery calls the platform again, and drops the lease. The first claim
// time stays as admit wrote it. A job already sent stays so.
//
//	KEYS  job hash
//	ARGV  ttl ms (restored if the hash lost its expiry), reason, code,
//	      message, field, attempts
//	reply 1
//
// The subscription ledger keeps one hash per user (platform, app, user):
// a field per template holding "state|grants|since µs|taker", state g
// (granted), r (rejected) or x (exhausted), when it changed and who took
// the last grant; beside it a sorted set of the events applied (by id,
// scored by time, trimmed to the events' max age) and a list of the latest
// changes ("at µs|what|template"). An event or answer older than the
// state's last change (in whole seconds, as the platforms' times are) is
// noted but changes nothing.
//
// sub_get reads one template's state; "" for none.
//
//	KEYS  user hash
//	ARGV  template
//	reply "state|grants|since µs" or ""
//
// sub_take takes a grant for a delivered job; a rejected or exhausted
// state becomes granted with none left (the delivery proves a grant), an
// unknown one stays unknown. The taker (the job) is kept, so a batch run
// twice takes once.
//
//	KEYS  user hash, history list
//	ARGV  template, at µs, ttl ms, taker
//	reply 1
//
// sub_apply applies a popup or change event once.
//
//	KEYS  user hash, applied events set, history list
//	ARGV  template, 1 accept / 0 reject, at µs, event id, ttl ms, events max age µs
//	reply 1 applied, 0 applied before
//
// sub_exhaust records a 43101 answer.
//
//	KEYS  user hash, history list
//	ARGV  template, at µs, ttl ms
//	reply 1
//
// ref_put remembers what a platform message id stands for.
//
//	KEYS  ref key
//	ARGV  value, ttl ms
//	reply 1
//
// ref_join appends a final result to a remembered message id, once.
//
//	KEYS  ref key
//	ARGV  result
//	reply the value, or false when none is remembered
var batchScript = redis.NewScript(`
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000000 + tonumber(t[2])

local function unlease(job, owner)
  local s = redis.call('HMGET', job, 's', 'o')
  if s[1] == 'lease' and s[2] == owner then
    redis.call('HSET', job, 's', 'idle')
    redis.call('HDEL', job, 'o', 'l')
  end
end

local function reserve(rate, interval, burst, maxWait)
  interval, burst, maxWait = tonumber(interval), tonumber(burst), tonumber(maxWait)
  local tat = tonumber(redis.call('GET', rate)) or now
  if tat < now then tat = now end
  local newTat = tat + interval
  local wait = newTat - interval * burst - now
  if wait > maxWait then return {3, wait} end
  if wait < 0 then wait = 0 end
  redis.call('SET', rate, string.format('%.0f', newTat), 'PX', math.ceil((newTat - now) / 1000) + 1000)
  return {0, wait}
end

-- legacy reads a job's state as herald v1.0 kept it (herald:job:<key>, no
-- hash tag): sent, or leased by another delivery. Read beside admit for
-- one dedup TTL after an upgrade, so that no job delivered before it is
-- sent again.
local function legacy(job, owner)
  local s = redis.call('HMGET', job, 's', 'q', 'm', 'n', 't', 'o', 'l')
  if s[1] == 'sent' then
    return {1, 0, tonumber(s[4]) or 0, tonumber(s[5]) or 0, s[2] or '', s[3] or ''}
  end
  if s[1] == 'lease' and s[6] ~= owner then
    local leaseEnd = tonumber(s[7]) or 0
    if leaseEnd > now then return {2, leaseEnd - now, 0, 0} end
  end
  return 0
end

local function admit(job, rate, owner, lease, ttl, interval, burst, maxWait)
  local s = redis.call('HMGET', job, 's', 'o', 'l', 'a', 'f', 't')
  local attempts = tonumber(s[4]) or 0
  if s[6] then
    local d = redis.call('HMGET', job, 'q', 'm', 'n')
    return {1, 0, tonumber(d[3]) or attempts, tonumber(s[6]) or 0, d[1] or '', d[2] or ''}
  end
  if s[1] == 'dead' then
    local d = redis.call('HMGET', job, 'dr', 'dc', 'dm', 'df', 'dn')
    return {4, 0, tonumber(d[5]) or attempts, tonumber(s[5]) or 0, d[1] or '', d[2] or '', d[3] or '', d[4] or ''}
  end
  if s[1] == 'lease' and s[2] ~= owner then
    local leaseEnd = tonumber(s[3]) or 0
    if leaseEnd > now then return {2, leaseEnd - now, attempts, 0} end
  end
  local wait = 0
  if tonumber(interval) > 0 then
    local r = reserve(rate, interval, burst, maxWait)
    if r[1] == 3 then return {3, r[2], attempts, 0} end
    wait = r[2]
  end
  local first, fresh = tonumber(s[5]), 0
  if not first then first, fresh = now, 1 end
  redis.call('HSET', job, 's', 'lease', 'o', owner,
    'l', string.format('%.0f', now + wait + tonumber(lease)), 'f', string.format('%.0f', first))
  -- The state outlives the lease by the TTL: a delivery within the lease
  -- is remembered for at least the TTL without sent touching the expiry.
  redis.call('PEXPIRE', job, ttl + math.ceil((wait + tonumber(lease)) / 1000))
  return {0, wait, attempts, first, fresh}
end

local function unclaim(job, owner, fresh)
  local s = redis.call('HMGET', job, 's', 'o', 'a')
  if s[1] == 'lease' and s[2] == owner then
    if fresh == '1' and not s[3] then
      redis.call('DEL', job)
    else
      redis.call('HSET', job, 's', 'idle')
      redis.call('HDEL', job, 'o', 'l')
    end
  end
  return 1
end

local function markSent(job, ttl, seq, msgid, attempts, at)
  -- HSET answers how many fields are new, HDEL how many it removed: all
  -- four new and none removed only if the hash was gone (expired or
  -- lost), and then it needs an expiry. (Written first, so that the hash
  -- never empties, which would delete it and its expiry.)
  local added = redis.call('HSET', job, 'q', seq, 'm', msgid, 'n', attempts, 't', at)
  if redis.call('HDEL', job, 's', 'o', 'l', 'f', 'a', 'x') == 0 and added == 4 then
    redis.call('PEXPIRE', job, ttl)
  end
  return 1
end

local function fail(job, owner, ttl)
  local f = redis.call('HMGET', job, 'x', 'a', 't', 'n')
  if f[3] then return tonumber(f[4]) or 0 end
  if f[1] == owner then return tonumber(f[2]) or 0 end
  local a = redis.call('HINCRBY', job, 'a', 1)
  redis.call('HSET', job, 'x', owner)
  if redis.call('PTTL', job) < 0 then redis.call('PEXPIRE', job, ttl) end
  unlease(job, owner)
  return a
end

local function release(job, owner)
  unlease(job, owner)
  return 1
end

local function decide(job, ttl, reason, code, message, field, attempts)
  if redis.call('HGET', job, 't') then return 1 end
  redis.call('HSET', job, 's', 'dead', 'dr', reason, 'dc', code, 'dm', message, 'df', field, 'dn', attempts)
  redis.call('HDEL', job, 'o', 'l')
  if redis.call('PTTL', job) < 0 then redis.call('PEXPIRE', job, ttl) end
  return 1
end

local function subParse(v)
  if not v then return nil, 0, 0, '' end
  local s, n, t, taker = string.match(v, '^(%a)|(%d+)|(%d+)|?(.*)$')
  return s, tonumber(n) or 0, tonumber(t) or 0, taker or ''
end

local function subSet(user, hist, template, s, n, t, what, at, ttl, taker)
  redis.call('HSET', user, template, s .. '|' .. n .. '|' .. string.format('%.0f', t) .. '|' .. (taker or ''))
  redis.call('PEXPIRE', user, ttl)
  redis.call('LPUSH', hist, string.format('%.0f', at) .. '|' .. what .. '|' .. template)
  redis.call('LTRIM', hist, 0, 19)
  redis.call('PEXPIRE', hist, ttl)
end

local function subNote(hist, template, what, at, ttl)
  redis.call('LPUSH', hist, string.format('%.0f', at) .. '|' .. what .. '|' .. template)
  redis.call('LTRIM', hist, 0, 19)
  redis.call('PEXPIRE', hist, ttl)
end

-- later reports whether a state changed at t is later than an event at
-- at: in whole seconds, the platforms' CreateTime being seconds.
local function later(t, at)
  return math.floor(t / 1000000) > math.floor(at / 1000000)
end

local function subGet(user, template)
  return redis.call('HGET', user, template) or ''
end

local function subTake(user, hist, template, at, ttl, taker)
  at = tonumber(at)
  local s, n, t, last = subParse(redis.call('HGET', user, template))
  if not s or last == taker then return 1 end
  if s == 'g' then
    if n > 0 then n = n - 1 end
  else
    s, n, t = 'g', 0, at
  end
  subSet(user, hist, template, s, n, t, 'sent', at, ttl, taker)
  return 1
end

local function subApply(user, evs, hist, template, accept, at, id, ttl, maxAge)
  at = tonumber(at)
  if redis.call('ZSCORE', evs, id) then return 0 end
  redis.call('ZADD', evs, at, id)
  redis.call('ZREMRANGEBYSCORE', evs, '-inf', now - tonumber(maxAge))
  redis.call('PEXPIRE', evs, ttl)
  local s, n, t = subParse(redis.call('HGET', user, template))
  if accept == '1' then
    if (s == 'r' or s == 'x') and later(t, at) then
      subNote(hist, template, 'stale accept', at, ttl)
      return 1
    end
    if s ~= 'g' then n = 0 end
    if at > t then t = at end
    subSet(user, hist, template, 'g', n + 1, t, 'accept', at, ttl)
  elseif s == 'g' and later(t, at) then
    subNote(hist, template, 'stale reject', at, ttl)
  else
    subSet(user, hist, template, 'r', 0, at, 'reject', at, ttl)
  end
  return 1
end

local function subExhaust(user, hist, template, at, ttl)
  at = tonumber(at)
  local s, n, t = subParse(redis.call('HGET', user, template))
  if s == 'g' and later(t, at) then
    subNote(hist, template, 'stale 43101', at, ttl)
    return 1
  end
  subSet(user, hist, template, 'x', 0, at, '43101', at, ttl)
  return 1
end

local function refPut(ref, value, ttl)
  redis.call('SET', ref, value, 'PX', ttl)
  return 1
end

local function refJoin(ref, result)
  local v = redis.call('GET', ref)
  if not v then return false end
  if not string.find(v, '\30', 1, true) then
    v = v .. '\30' .. result
    redis.call('SET', ref, v, 'KEEPTTL')
  end
  return v
end

local results = {}
local k, a = 1, 1
while a <= #ARGV do
  local name = ARGV[a]
  local ok, res
  if name == 'admit' then
    ok, res = pcall(admit, KEYS[k], KEYS[k + 1], unpack(ARGV, a + 1, a + 6))
    k, a = k + 2, a + 7
  elseif name == 'legacy' then
    ok, res = pcall(legacy, KEYS[k], ARGV[a + 1])
    k, a = k + 1, a + 2
  elseif name == 'reserve' then
    ok, res = pcall(reserve, KEYS[k], unpack(ARGV, a + 1, a + 3))
    k, a = k + 1, a + 4
  elseif name == 'unclaim' then
    ok, res = pcall(unclaim, KEYS[k], ARGV[a + 1], ARGV[a + 2])
    k, a = k + 1, a + 3
  elseif name == 'sent' then
    ok, res = pcall(markSent, KEYS[k], unpack(ARGV, a + 1, a + 5))
    k, a = k + 1, a + 6
  elseif name == 'fail' then
    ok, res = pcall(fail, KEYS[k], ARGV[a + 1], ARGV[a + 2])
    k, a = k + 1, a + 3
  elseif name == 'release' then
    ok, res = pcall(release, KEYS[k], ARGV[a + 1])
    k, a = k + 1, a + 2
  elseif name == 'decide' then
    ok, res = pcall(decide, KEYS[k], unpack(ARGV, a + 1, a + 6))
    k, a = k + 1, a + 7
  elseif name == 'sub_get' then
    ok, res = pcall(subGet, KEYS[k], ARGV[a + 1])
    k, a = k + 1, a + 2
  elseif name == 'sub_take' then
    ok, res = pcall(subTake, KEYS[k], KEYS[k + 1], unpack(ARGV, a + 1, a + 4))
    k, a = k + 2, a + 5
  elseif name == 'sub_apply' then
    ok, res = pcall(subApply, KEYS[k], KEYS[k + 1], KEYS[k + 2], unpack(ARGV, a + 1, a + 6))
    k, a = k + 3, a + 7
  elseif name == 'sub_exhaust' then
    ok, res = pcall(subExhaust, KEYS[k], KEYS[k + 1], unpack(ARGV, a + 1, a + 3))
    k, a = k + 2, a + 4
  elseif name == 'ref_put' then
    ok, res = pcall(refPut, KEYS[k], ARGV[a + 1], ARGV[a + 2])
    k, a = k + 1, a + 3
  elseif name == 'ref_join' then
    ok, res = pcall(refJoin, KEYS[k], ARGV[a + 1])
    k, a = k + 1, a + 2
  else
    return redis.error_reply('unknown operation ' .. name)
  end
  if not ok then
    if type(res) == 'table' then res = res.err end
    res = redis.error_reply(tostring(res))
  end
  results[#results + 1] = res
end
results[#results + 1] = now
return results
`)

// pingScript writes a store's health key on a Redis Cluster, where Ping
// writes one on each master (a key whose hash tag lies in that master's
// slots), and returns that master's TIME in µs, which a keyless TIME would
// not reach.
//
//	KEYS  health key
//	ARGV  value, ms to live
var pingScript = redis.NewScript(`
redis.call('SET', KEYS[1], ARGV[1], 'PX', ARGV[2])
local t = redis.call('TIME')
return tonumber(t[1]) * 1000000 + tonumber(t[2])
`)
