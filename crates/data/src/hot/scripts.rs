//! Lua scripts of the Redis backend: each runs atomically on the server, with the server's
//! clock (`TIME`), so every node agrees on when a lease or a visibility timeout ends.
//! ARGV[1] is always the key prefix `{prefix}` (one hash tag: all keys in one cluster slot).
//!
//! Keys: `P:lease:calls` hash call → "tenant|node"; `P:lease:all`, `P:lease:t:<tenant>`,
//! `P:lease:n:<node>` zsets call → expiry ms; `P:q:jobs` hash id → body; `P:q:attempts` hash;
//! `P:q:owner` hash id → tenant; `P:q:ready:<tenant>` zset id → due ms; `P:q:rr` zset tenant →
//! turn (tenants with waiting jobs, served in turn order); `P:q:inflight` zset id → visible-again
//! ms; `P:q:seq`, `P:q:rrseq` counters.

const COMMON: &str = r#"
local function now_ms()
  local t = redis.call('TIME')
  return tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
end
local function drop_lease(p, call, tn)
  local sep = string.find(tn, '|', 1, true)
  redis.call('ZREM', p .. ':lease:t:' .. string.sub(tn, 1, sep - 1), call)
  redis.call('ZREM', p .. ':lease:n:' .. string.sub(tn, sep + 1), call)
  redis.call('HDEL', p .. ':lease:calls', call)
  redis.call('ZREM', p .. ':lease:all', call)
end
local function prune(p, now)
  local dead = redis.call('ZRANGEBYSCORE', p .. ':lease:all', '-inf', now, 'LIMIT', 0, 200)
  for _, c in ipairs(dead) do
    local tn = redis.call('HGET', p .. ':lease:calls', c)
    if tn then drop_lease(p, c, tn) else redis.call('ZREM', p .. ':lease:all', c) end
  end
end
local function set_lease(p, call, tenant, node, exp)
  redis.call('ZADD', p .. ':lease:all', exp, call)
  redis.call('ZADD', p .. ':lease:t:' .. tenant, exp, call)
  redis.call('ZADD', p .. ':lease:n:' .. node, exp, call)
  redis.call('HSET', p .. ':lease:calls', call, tenant .. '|' .. node)
end
"#;

/// ARGV: prefix, tenant, call, node, limit (-1: none), ttl ms → 1 ok, -1 limit, -2 conflict.
/// A live lease of the same tenant moves to `node` (refreshed), counted once: the call's
/// media reached another node than the webhook that admitted it.
const ACQUIRE: &str = r#"
local p, tenant, call, node = ARGV[1], ARGV[2], ARGV[3], ARGV[4]
local limit, ttl = tonumber(ARGV[5]), tonumber(ARGV[6])
local now = now_ms()
prune(p, now)
local cur = redis.call('HGET', p .. ':lease:calls', call)
if cur then
  local exp = redis.call('ZSCORE', p .. ':lease:all', call)
  if exp and tonumber(exp) > now then
    if string.sub(cur, 1, #tenant + 1) ~= tenant .. '|' then return -2 end
    drop_lease(p, call, cur)
    set_lease(p, call, tenant, node, now + ttl)
    return 1
  end
  drop_lease(p, call, cur)
end
if limit >= 0 and redis.call('ZCOUNT', p .. ':lease:t:' .. tenant, '(' .. now, '+inf') >= limit then
  return -1
end
set_lease(p, call, tenant, node, now + ttl)
return 1
"#;

/// ARGV: prefix, node, ttl ms → leases extended.
const HEARTBEAT: &str = r#"
local p, node, ttl = ARGV[1], ARGV[2], tonumber(ARGV[3])
local now = now_ms()
prune(p, now)
local calls = redis.call('ZRANGEBYSCORE', p .. ':lease:n:' .. node, '(' .. now, '+inf')
local n = 0
for _, c in ipairs(calls) do
  local tn = redis.call('HGET', p .. ':lease:calls', c)
  if tn then
    local sep = string.find(tn, '|', 1, true)
    set_lease(p, c, string.sub(tn, 1, sep - 1), node, now + ttl)
    n = n + 1
  end
end
return n
"#;

/// ARGV: prefix, call → 1 if a live lease was released.
const RELEASE: &str = r#"
local p, call = ARGV[1], ARGV[2]
local now = now_ms()
prune(p, now)
local cur = redis.call('HGET', p .. ':lease:calls', call)
if not cur then return 0 end
local exp = redis.call('ZSCORE', p .. ':lease:all', call)
drop_lease(p, call, cur)
if exp and tonumber(exp) > now then return 1 end
return 0
"#;

/// ARGV: zset key → members scored after now.
const COUNT_LIVE: &str = r#"
return redis.call('ZCOUNT', ARGV[1], '(' .. now_ms(), '+inf')
"#;

/// ARGV: key, limit, window ms, seq key → {1, remaining} or {0, retry after ms}.
const RATE: &str = r#"
local k, limit, window = ARGV[1], tonumber(ARGV[2]), tonumber(ARGV[3])
local now = now_ms()
redis.call('ZREMRANGEBYSCORE', k, '-inf', now - window)
local n = redis.call('ZCARD', k)
if n < limit then
  redis.call('ZADD', k, now, now .. '-' .. redis.call('INCR', ARGV[4]))
  redis.call('PEXPIRE', k, window)
  return {1, limit - n - 1}
end
local oldest = redis.call('ZRANGE', k, 0, 0, 'WITHSCORES')
if #oldest == 0 then return {0, window} end
return {0, math.max(1, tonumber(oldest[2]) + window - now)}
"#;

/// Queue helpers: a job's tenant gets back into the rotation at the current turn (ZADD NX
/// keeps the place of a tenant already in it).
const QUEUE_COMMON: &str = r#"
local function make_ready(p, id, due)
  local t = redis.call('HGET', p .. ':q:owner', id)
  redis.call('ZADD', p .. ':q:ready:' .. t, due, id)
  redis.call('ZADD', p .. ':q:rr', 'NX', tonumber(redis.call('GET', p .. ':q:rrseq') or 0), t)
end
"#;

/// ARGV: prefix, body JSON, not-before ms (0: none), tenant → job id.
const ENQUEUE: &str = r#"
local p = ARGV[1]
local id = string.format('j%016d', redis.call('INCR', p .. ':q:seq'))
redis.call('HSET', p .. ':q:jobs', id, ARGV[2])
redis.call('HSET', p .. ':q:owner', id, ARGV[4])
make_ready(p, id, math.max(tonumber(ARGV[3]), now_ms()))
return id
"#;

/// ARGV: prefix, visibility ms → {id, body, attempts} or nil. Tenants take turns: the one
/// served longest ago with a due job goes first; within a tenant, oldest due first.
const DEQUEUE: &str = r#"
local p, vis = ARGV[1], tonumber(ARGV[2])
local now = now_ms()
local late = redis.call('ZRANGEBYSCORE', p .. ':q:inflight', '-inf', now, 'LIMIT', 0, 100)
for _, id in ipairs(late) do
  redis.call('ZREM', p .. ':q:inflight', id)
  make_ready(p, id, now)
end
for _, t in ipairs(redis.call('ZRANGE', p .. ':q:rr', 0, -1)) do
  local rk = p .. ':q:ready:' .. t
  local first = redis.call('ZRANGEBYSCORE', rk, '-inf', now, 'LIMIT', 0, 1)
  if #first > 0 then
    local id = first[1]
    redis.call('ZREM', rk, id)
    redis.call('ZADD', p .. ':q:inflight', now + vis, id)
    redis.call('ZADD', p .. ':q:rr', redis.call('INCR', p .. ':q:rrseq'), t)
    if redis.call('ZCARD', rk) == 0 then redis.call('ZREM', p .. ':q:rr', t) end
    local attempts = redis.call('HINCRBY', p .. ':q:attempts', id, 1)
    return {id, redis.call('HGET', p .. ':q:jobs', id), attempts}
  end
end
return false
"#;

/// ARGV: prefix, id → 1 if the job existed.
const ACK: &str = r#"
local p, id = ARGV[1], ARGV[2]
local t = redis.call('HGET', p .. ':q:owner', id)
if t then
  local rk = p .. ':q:ready:' .. t
  redis.call('ZREM', rk, id)
  if redis.call('ZCARD', rk) == 0 then redis.call('ZREM', p .. ':q:rr', t) end
end
redis.call('ZREM', p .. ':q:inflight', id)
redis.call('HDEL', p .. ':q:attempts', id)
redis.call('HDEL', p .. ':q:owner', id)
return redis.call('HDEL', p .. ':q:jobs', id)
"#;

/// ARGV: prefix, id, retry at ms (0: now) → 1 if the job was in flight.
const NACK: &str = r#"
local p, id = ARGV[1], ARGV[2]
if redis.call('ZREM', p .. ':q:inflight', id) == 0 then return 0 end
make_ready(p, id, math.max(tonumber(ARGV[3]), now_ms()))
return 1
"#;

/// ARGV: prefix → jobs due now plus in-flight jobs past their timeout.
const DEPTH: &str = r#"
local p = ARGV[1]
local now = now_ms()
local n = redis.call('ZCOUNT', p .. ':q:inflight', '-inf', now)
for _, t in ipairs(redis.call('ZRANGE', p .. ':q:rr', 0, -1)) do
  n = n + redis.call('ZCOUNT', p .. ':q:ready:' .. t, '-inf', now)
end
return n
"#;

pub(super) struct Scripts {
    pub acquire: redis::Script,
    pub heartbeat: redis::Script,
    pub release: redis::Script,
    pub count_live: redis::Script,
    pub rate: redis::Script,
    pub enqueue: redis::Script,
    pub dequeue: redis::Script,
    pub ack: redis::Script,
    pub nack: redis::Script,
    pub depth: redis::Script,
}

impl Scripts {
    pub fn new() -> Scripts {
        let s = |body: &str| redis::Script::new(&format!("{COMMON}{body}"));
        let q = |body: &str| redis::Script::new(&format!("{COMMON}{QUEUE_COMMON}{body}"));
        Scripts {
            acquire: s(ACQUIRE),
            heartbeat: s(HEARTBEAT),
            release: s(RELEASE),
            count_live: s(COUNT_LIVE),
            rate: s(RATE),
            enqueue: q(ENQUEUE),
            dequeue: q(DEQUEUE),
            ack: q(ACK),
            nack: q(NACK),
            depth: q(DEPTH),
        }
    }
}
