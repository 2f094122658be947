"""The Lua scripts of the lock, each one atomic step on the Redis server.

The async `fencing.FencedLock` and the sync `fencing.sync.FencedLock` run these
same scripts on the same keys, so their leases exclude each other and their
tokens come from one counter.

Every script's header lists its KEYS, ARGV and return codes; `Outcome` maps
the codes to names in one place. Scripts are registered once per lock with
`register_script`, so a call is one EVALSHA (and re-sends the source by itself
after a Redis restart emptied the script cache). Redis 5 or later: scripts call
TIME and then write, which needs effects replication (the default since 5).

A lock key holds "<token>:<lease id>". Ownership is decided by the lease id,
a 128-bit random string chosen by the client: even if the token counter rolled
back and a token repeats, a lease can never release or extend another's lock.

Every script is idempotent for its lease id, so a call whose answer was lost
may be sent again: ACQUIRE returns the lease it granted before (renewed),
RELEASE, EXTEND and LEAVE find their work done or do it again.
"""

from __future__ import annotations

import enum

# Shared by the scripts that wait, grant or wake. Keys of a waiter sit beside
# the live-waiters key: "<base>waiters" -> "<base>wake:<id>", "<base>wants",
# and a lock key "<base>lock:<name>" has its queue at "<base>queue:<name>".
_PRELUDE = """
local WAKE_TTL_MS = 5000
local now = nil
local function now_ms()
  if not now then
    local t = redis.call('TIME')
    now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
  end
  return now
end
local function base_of(waiters) return string.sub(waiters, 1, -8) end
local function forget(waiters, id)
  redis.call('ZREM', waiters, id)
  redis.call('HDEL', base_of(waiters) .. 'wants', id)
end
-- The first live waiter of a queue, dropping the dead ones ahead of it. A
-- waiter is live while its deadline in `waiters` lies ahead.
local function live_head(queue, waiters)
  while true do
    local head = redis.call('ZRANGE', queue, 0, 0)[1]
    if not head then return nil end
    local deadline = redis.call('ZSCORE', waiters, head)
    if deadline and tonumber(deadline) > now_ms() then return head end
    redis.call('ZREM', queue, head)
    forget(waiters, head)
  end
end
local function draw_token(counters, floor)
  if floor > 0 and tonumber(redis.call('HGET', counters, 'token') or '0') < floor then
    redis.call('HSET', counters, 'token', string.format('%d', floor))
  end
  return redis.call('HINCRBY', counters, 'token', 1)
end
local function push(wake, value)
  redis.call('LPUSH', wake, value)
  redis.call('LTRIM', wake, 0, 0)
  redis.call('PEXPIRE', wake, WAKE_TTL_MS)
end
-- Direct hand-off: grant the lease to the first live waiter of `queue` if
-- every lock it waits for is free and it is first in line for each (new
-- token, its full ttl), and push the token onto its wake list; if it cannot
-- be granted yet, push 0 (try again).
local function hand_off(queue, counters, waiters)
  local head = live_head(queue, waiters)
  if not head then return end
  local base = base_of(waiters)
  local wake = base .. 'wake:' .. head
  local want = redis.call('HGET', base .. 'wants', head)
  if not want then push(wake, 0) return end
  want = cjson.decode(want)
  local locks = {}
  for i = 3, #want do
    local lock = want[i]
    if redis.call('EXISTS', lock) == 1 then push(wake, 0) return end
    local other = base .. 'queue:' .. string.sub(lock, #base + 6)
    if other ~= queue and live_head(other, waiters) ~= head then push(wake, 0) return end
    locks[#locks + 1] = lock
  end
  local token = draw_token(counters, want[2])
  local value = string.format('%d', token) .. ':' .. head
  for _, lock in ipairs(locks) do
    redis.call('SET', lock, value, 'PX', want[1])
    redis.call('ZREM', base .. 'queue:' .. string.sub(lock, #base + 6), head)
  end
  forget(waiters, head)
  push(wake, token)
end
-- A waiter leaves: release any lock it holds (a grant it never saw, or an
-- acquire whose answer was lost), leave every queue, and hand off what it
-- freed or was first in line for.
local function leave(n, counters, waiters, id)
  local suffix = ':' .. id
  local pass = {}
  for i = 1, n do
    local value = redis.call('GET', KEYS[i])
    if value and string.sub(value, -#suffix) == suffix then
      redis.call('DEL', KEYS[i])
      pass[i] = true
    end
  end
  for i = 1, n do
    if live_head(KEYS[n + i], waiters) == id then pass[i] = true end
    redis.call('ZREM', KEYS[n + i], id)
  end
  forget(waiters, id)
  redis.call('DEL', base_of(waiters) .. 'wake:' .. id)
  for i = 1, n do
    if pass[i] then hand_off(KEYS[n + i], counters, waiters) end
  end
end
"""

# ACQUIRE: take every lock and draw one token, all or nothing, fairly.
# KEYS[1..n]      lock keys, one per resource
# KEYS[n+1..2n]   wait queues of the same resources (sorted sets: lease id by ticket)
# KEYS[2n+1]      counters (hash: "token" the fencing token, "ticket" the waiters' arrival order)
# KEYS[2n+2]      live waiters (sorted set: lease id by liveness deadline, ms)
# ARGV[1] lease ttl ms   ARGV[2] floor (0: none)   ARGV[3] lease id
# ARGV[4] waiter liveness ms when busy: > 0 wait in line (join, or stay and refresh);
#         0 one try (do not join); < 0 give up (leave the line)
# If every lock already holds this lease id (a retry whose first try ran, or a
# hand-off the waiter has not seen yet), the same lease is returned, renewed.
# Returns one integer (no array to parse on the hot path):
#   > 0   acquired: the token
#   -1    busy: a waiter that came first is in the way (it is served first: FIFO),
#         or a lock without expiry
#   < -1  busy: the lock in the way expires in (-result - 2) ms
ACQUIRE = _PRELUDE + """
local n = (#KEYS - 2) / 2
local counters, waiters = KEYS[2 * n + 1], KEYS[2 * n + 2]
local ttl, id, live = ARGV[1], ARGV[3], tonumber(ARGV[4])
local suffix = ':' .. id
local mine, blocked = 0, nil
local value = nil
for i = 1, n do
  value = redis.call('GET', KEYS[i])
  if value then
    if string.sub(value, -#suffix) ~= suffix then
      local pttl = redis.call('PTTL', KEYS[i])
      blocked = pttl < 0 and -1 or -pttl - 2
      break
    end
    mine = mine + 1
  end
end
if mine == n then
  for i = 1, n do
    redis.call('PEXPIRE', KEYS[i], ttl)
    redis.call('ZREM', KEYS[n + i], id)
  end
  forget(waiters, id)
  redis.call('DEL', base_of(waiters) .. 'wake:' .. id)
  return tonumber(string.sub(value, 1, -#suffix - 1))
end
local queued = false
if not blocked then
  for i = 1, n do
    local head = live_head(KEYS[n + i], waiters)
    if head == id then queued = true
    elseif head then blocked = -1 break end
  end
end
if blocked then
  if live > 0 then
    local now = now_ms()
    for _, dead in ipairs(redis.call('ZRANGEBYSCORE', waiters, '-inf', now, 'LIMIT', 0, 8)) do
      forget(waiters, dead)
    end
    local ticket = redis.call('ZSCORE', KEYS[n + 1], id)
    if not ticket then ticket = redis.call('HINCRBY', counters, 'ticket', 1) end
    local want = {tonumber(ttl), tonumber(ARGV[2])}
    for i = 1, n do
      redis.call('ZADD', KEYS[n + i], 'NX', ticket, id)
      redis.call('PEXPIRE', KEYS[n + i], 2 * live)
      want[i + 2] = KEYS[i]
    end
    local wants = base_of(waiters) .. 'wants'
    redis.call('HSETNX', wants, id, cjson.encode(want))
    redis.call('PEXPIRE', wants, 2 * live)
    redis.call('ZADD', waiters, now + live, id)
    redis.call('PEXPIRE', waiters, 2 * live)
  elseif live < 0 then
    leave(n, counters, waiters, id)
  end
  return blocked
end
local token = draw_token(counters, tonumber(ARGV[2]))
value = string.format('%d', token) .. suffix
for i = 1, n do redis.call('SET', KEYS[i], value, 'PX', ttl) end
if queued then
  for i = 1, n do redis.call('ZREM', KEYS[n + i], id) end
  forget(waiters, id)
  redis.call('DEL', base_of(waiters) .. 'wake:' .. id)
end
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

# RELEASE: delete the locks only if every one still holds this lease, and hand
# each resource to its first live waiter (see hand_off).
# KEYS   as ACQUIRE's
# ARGV[1] lease id
# Returns 1: released.  0: not held (expired or taken over): nothing was deleted.
RELEASE = _PRELUDE + _HELD_BY + """
local n = (#KEYS - 2) / 2
if not held_by(n, ARGV[1]) then return 0 end
for i = 1, n do redis.call('DEL', KEYS[i]) end
for i = 1, n do hand_off(KEYS[n + i], KEYS[2 * n + 1], KEYS[2 * n + 2]) end
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

# LEAVE: after a cancelled or failed acquire: release whatever this lease id
# holds, leave the queues, hand off to whoever is first now.
# KEYS   as ACQUIRE's
# ARGV[1] lease id
# Returns 1 (always).
LEAVE = _PRELUDE + """
local n = (#KEYS - 2) / 2
leave(n, KEYS[2 * n + 1], KEYS[2 * n + 2], ARGV[1])
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


def granted_token(popped: object) -> int | None:
    """What a waiter's BLPOP returned: the token of a hand-off, or None (woken or timed out)."""
    if popped is None:
        return None
    token = int(popped[1])  # type: ignore[index]
    return token if token > 0 else None
