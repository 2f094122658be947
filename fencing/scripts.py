"""The Lua scripts of `FencedLock`, each one atomic step on the Redis server.

Every script's header lists its KEYS, ARGV and return codes; `Outcome` maps
the codes to names in one place. Scripts are registered once per lock with
`register_script`, so a call is one EVALSHA (and re-sends the source by itself
after a Redis restart emptied the script cache).

A lock key holds "<token>:<lease id>". Ownership is decided by the lease id,
a 128-bit random string chosen by the client: even if the token counter rolled
back and a token repeats, a lease can never release or extend another's lock.
"""

from __future__ import annotations

import enum

# Shared helpers, prepended to the scripts that wait or wake. A waiter's wake
# list sits beside the live-waiters key: "<base>waiters" -> "<base>wake:<id>".
_PRELUDE = """
redis.replicate_commands()
local WAKE_TTL_MS = 5000
local function now_ms()
  local t = redis.call('TIME')
  return tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
end
local function wake_key(waiters, id)
  return string.sub(waiters, 1, -8) .. 'wake:' .. id
end
-- The first live waiter of a queue, dropping the dead ones ahead of it. A
-- waiter is live while its deadline in `waiters` lies ahead.
local function live_head(queue, waiters)
  local now = nil
  while true do
    local head = redis.call('ZRANGE', queue, 0, 0)[1]
    if not head then return nil end
    local deadline = redis.call('ZSCORE', waiters, head)
    now = now or now_ms()
    if deadline and tonumber(deadline) > now then return head end
    redis.call('ZREM', queue, head)
    redis.call('ZREM', waiters, head)
  end
end
-- Wake the waiter now first in line for this queue, if any.
local function wake_head(queue, waiters)
  local head = live_head(queue, waiters)
  if head then
    local wake = wake_key(waiters, head)
    redis.call('LPUSH', wake, 1)
    redis.call('LTRIM', wake, 0, 0)
    redis.call('PEXPIRE', wake, WAKE_TTL_MS)
  end
end
"""

# ACQUIRE: take every lock and draw one token, all or nothing, fairly.
# KEYS[1..n]      lock keys, one per resource
# KEYS[n+1..2n]   wait queues of the same resources (sorted sets: lease id by ticket)
# KEYS[2n+1]      counters (hash: "token" the fencing token, "ticket" the waiters' arrival order)
# KEYS[2n+2]      live waiters (sorted set: lease id by liveness deadline, ms)
# ARGV[1] lease ttl ms   ARGV[2] floor (0: none)   ARGV[3] lease id
# ARGV[4] waiter liveness ms; 0: do not join the queues when busy
# Returns one integer (no array to parse on the hot path):
#   > 0   acquired: the token
#   -1    busy: a waiter that came first is in the way (it is served first: FIFO),
#         or a lock without expiry
#   < -1  busy: the lock in the way expires in (-result - 2) ms
ACQUIRE = _PRELUDE + """
local n = (#KEYS - 2) / 2
local counters, waiters = KEYS[2 * n + 1], KEYS[2 * n + 2]
local ttl, floor, id, live = ARGV[1], tonumber(ARGV[2]), ARGV[3], tonumber(ARGV[4])
local blocked = nil
for i = 1, n do
  local pttl = redis.call('PTTL', KEYS[i])
  if pttl ~= -2 then blocked = -pttl - 2 break end
  local head = live_head(KEYS[n + i], waiters)
  if head and head ~= id then blocked = -1 break end
end
if blocked then
  if live > 0 then
    local now = now_ms()
    redis.call('ZREMRANGEBYSCORE', waiters, '-inf', now)
    local ticket = redis.call('ZSCORE', KEYS[n + 1], id)
    if not ticket then ticket = redis.call('HINCRBY', counters, 'ticket', 1) end
    for i = 1, n do
      redis.call('ZADD', KEYS[n + i], 'NX', ticket, id)
      redis.call('PEXPIRE', KEYS[n + i], 2 * live)
    end
    redis.call('ZADD', waiters, now + live, id)
    redis.call('PEXPIRE', waiters, 2 * live)
  end
  return math.min(blocked, -1)
end
if floor > 0 and tonumber(redis.call('HGET', counters, 'token') or '0') < floor then
  redis.call('HSET', counters, 'token', string.format('%d', floor))
end
local token = redis.call('HINCRBY', counters, 'token', 1)
local value = string.format('%d', token) .. ':' .. id
for i = 1, n do
  redis.call('SET', KEYS[i], value, 'PX', ttl)
  redis.call('ZREM', KEYS[n + i], id)
end
if redis.call('ZREM', waiters, id) == 1 then redis.call('DEL', wake_key(waiters, id)) end
return token
"""

# Checks that every lock key still holds the lease (shared by RELEASE and EXTEND).
_HELD_BY = """
local function held_by(n, id)
  local suffix = ':' .. id
  for i = 1, n do
    local value = redis.call('GET', KEYS[i])
    if not value or string.sub(value, -#suffix) ~= suffix then return false end
  end
  return true
end
"""

# RELEASE: delete the locks only if every one still holds this lease; wake the next waiters.
# KEYS[1..n]      lock keys
# KEYS[n+1..2n]   wait queues of the same resources
# KEYS[2n+1]      live waiters
# ARGV[1] lease id
# Returns 1: released.  0: not held (expired or taken over): nothing was deleted.
RELEASE = _PRELUDE + _HELD_BY + """
local n = (#KEYS - 1) / 2
if not held_by(n, ARGV[1]) then return 0 end
for i = 1, n do redis.call('DEL', KEYS[i]) end
for i = 1, n do wake_head(KEYS[n + i], KEYS[2 * n + 1]) end
return 1
"""

# EXTEND: renew every lock to the full ttl, only if every one still holds this lease.
# KEYS[1..n]  lock keys
# ARGV[1] lease id   ARGV[2] lease ttl ms
# Returns 1: renewed.  0: not held: nothing was changed.
EXTEND = _HELD_BY + """
local n = #KEYS
if not held_by(n, ARGV[1]) then return 0 end
for i = 1, n do redis.call('PEXPIRE', KEYS[i], ARGV[2]) end
return 1
"""

# LEAVE: a waiter gives up: leave the queues and wake whoever is first now.
# KEYS[1..n]  wait queues   KEYS[n+1]  live waiters
# ARGV[1] lease id
# Returns 1 (always).
LEAVE = _PRELUDE + """
local n = #KEYS - 1
local waiters = KEYS[n + 1]
local was_head = {}
for i = 1, n do was_head[i] = live_head(KEYS[i], waiters) == ARGV[1] end
redis.call('ZREM', waiters, ARGV[1])
redis.call('DEL', wake_key(waiters, ARGV[1]))
for i = 1, n do
  redis.call('ZREM', KEYS[i], ARGV[1])
  if was_head[i] then wake_head(KEYS[i], waiters) end
end
return 1
"""


class Outcome(enum.IntEnum):
    """What RELEASE and EXTEND return."""

    NOT_HELD = 0
    DONE = 1


def acquired_token(result: int) -> int | None:
    """ACQUIRE's answer: the token, or None when busy."""
    return result if result > 0 else None


def busy_expires_in(result: int) -> float | None:
    """For a busy ACQUIRE: seconds until the lock in the way expires, if known."""
    return (-result - 2) / 1000 if result < -1 else None
