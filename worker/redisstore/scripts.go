package redisstore

import "github.com/redis/go-redis/v9"

// admitScript: dedup check, GCRA reservation and lease in one step.
//
// KEYS[1] job hash, KEYS[2] rate cell (ignored when ARGV[4] is 0)
// ARGV[1] owner, ARGV[2] lease µs, ARGV[3] ttl ms, ARGV[4] emission
// interval µs (0: no limit), ARGV[5] burst, ARGV[6] max wait µs
//
// Returns {status, wait µs, attempts, first claim µs}; status 0 claimed,
// 1 already sent, 2 busy (leased by another owner), 3 throttled. Already
// sent returns {1, 0, attempts, sent at µs, stream sequence, msgid}.
var admitScript = redis.NewScript(`
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000000 + tonumber(t[2])
local s = redis.call('HMGET', KEYS[1], 's', 'o', 'l', 'a', 'f')
local attempts = tonumber(s[4]) or 0
if s[1] == 'sent' then
  local d = redis.call('HMGET', KEYS[1], 'q', 'm', 'n', 't')
  return {1, 0, tonumber(d[3]) or attempts, tonumber(d[4]) or 0, d[1] or '', d[2] or ''}
end
if s[1] == 'lease' and s[2] ~= ARGV[1] then
  local leaseEnd = tonumber(s[3]) or 0
  if leaseEnd > now then return {2, leaseEnd - now, attempts, 0} end
end
local wait = 0
local interval = tonumber(ARGV[4])
if interval > 0 then
  local tat = tonumber(redis.call('GET', KEYS[2])) or now
  if tat < now then tat = now end
  local newTat = tat + interval
  wait = newTat - interval * tonumber(ARGV[5]) - now
  if wait > tonumber(ARGV[6]) then return {3, wait, attempts, 0} end
  if wait < 0 then wait = 0 end
  redis.call('SET', KEYS[2], string.format('%.0f', newTat), 'PX', math.ceil((newTat - now) / 1000) + 1000)
end
local first = tonumber(s[5]) or now
redis.call('HSET', KEYS[1], 's', 'lease', 'o', ARGV[1],
  'l', string.format('%.0f', now + wait + tonumber(ARGV[2])), 'f', string.format('%.0f', first))
redis.call('PEXPIRE', KEYS[1], ARGV[3])
return {0, wait, attempts, first}
`)

// markSentScript: KEYS[1] job hash; ARGV[1] ttl ms, ARGV[2] stream
// sequence, ARGV[3] msgid, ARGV[4] attempts, ARGV[5] accepted at µs.
var markSentScript = redis.NewScript(`
redis.call('HSET', KEYS[1], 's', 'sent', 'q', ARGV[2], 'm', ARGV[3], 'n', ARGV[4], 't', ARGV[5])
redis.call('HDEL', KEYS[1], 'o', 'l')
redis.call('PEXPIRE', KEYS[1], ARGV[1])
return 1
`)

// failScript counts an attempt and releases the lease if ARGV[1] holds it.
// KEYS[1] job hash; ARGV[1] owner, ARGV[2] ttl ms. Returns the attempts so far.
var failScript = redis.NewScript(`
local a = redis.call('HINCRBY', KEYS[1], 'a', 1)
if redis.call('PTTL', KEYS[1]) < 0 then redis.call('PEXPIRE', KEYS[1], ARGV[2]) end
if redis.call('HGET', KEYS[1], 'o') == ARGV[1] then
  redis.call('HSET', KEYS[1], 's', 'idle')
  redis.call('HDEL', KEYS[1], 'o', 'l')
end
return a
`)

// releaseScript releases the lease if ARGV[1] holds it. KEYS[1] job hash.
var releaseScript = redis.NewScript(`
if redis.call('HGET', KEYS[1], 'o') == ARGV[1] then
  redis.call('HSET', KEYS[1], 's', 'idle')
  redis.call('HDEL', KEYS[1], 'o', 'l')
end
return 1
`)

var scripts = []*redis.Script{admitScript, markSentScript, failScript, releaseScript}
