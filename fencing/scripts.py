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

# Shared by the scripts that wait, grant or wake, defined after their fast path
# (a `local function` costs a closure each run). KEYS name the lock keys and the
# counters; the other keys of a key space sit beside the counters, at `base`:
# "<base>counters", "<base>waiters", "<base>wants", "<base>wake:<id>", and a lock
# key "<base>lock:<name>" has its queue at "<base>queue:<name>" (one slot: one tag).
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
local function queue_of(base, lock) return base .. 'queue:' .. string.sub(lock, #base + 6) end
local function forget(base, id)
  redis.call('ZREM', base .. 'waiters', id)
  redis.call('HDEL', base .. 'wants', id)
end
-- The first live waiter of a queue, dropping the dead ones ahead of it. A
-- waiter is live while its deadline in `waiters` lies ahead.
local function live_head(base, queue)
  local waiters = base .. 'waiters'
  while true do
    local head = redis.call('ZRANGE', queue, 0, 0)[1]
    if not head then return nil end
    local deadline = redis.call('ZSCORE', waiters, head)
    if deadline and tonumber(deadline) > now_ms() then return head end
    redis.call('ZREM', queue, head)
    forget(base, head)
  end
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
local function hand_off(base, queue)
  local head = live_head(base, queue)
  if not head then return end
  local wake = base .. 'wake:' .. head
  local want = redis.call('HGET', base .. 'wants', head)
  if not want then push(wake, 0) return end
  want = cjson.decode(want)
  for i = 3, #want do
    local other = queue_of(base, want[i])
    if redis.call('EXISTS', want[i]) == 1
        or (other ~= queue and live_head(base, other) ~= head) then
      push(wake, 0)
      return
    end
  end
  local token = draw_token(base .. 'counters', want[2])
  local value = string.format('%d', token) .. ':' .. head
  for i = 3, #want do
    redis.call('SET', want[i], value, 'PX', want[1])
    redis.call('ZREM', queue_of(base, want[i]), head)
  end
  forget(base, head)
  push(wake, token)
end
-- A waiter leaves: release any lock it holds (a grant it never saw, or an
-- acquire whose answer was lost), leave every queue, and hand off what it
-- freed or was first in line for.
local function leave(n, base, id)
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
    local queue = queue_of(base, KEYS[i])
    if live_head(base, queue) == id then pass[i] = true end
    redis.call('ZREM', queue, id)
  end
  forget(base, id)
  redis.call('DEL', base .. 'wake:' .. id)
  for i = 1, n do
    if pass[i] then hand_off(base, queue_of(base, KEYS[i])) end
  end
end
"""

_DRAW_TOKEN = """
local function draw_token(counters, floor)
  if floor > 0 and tonumber(redis.call('HGET', counters, 'token') or '0') < floor then
    redis.call('HSET', counters, 'token', string.format('%d', floor))
  end
  return redis.call('HINCRBY', counters, 'token', 1)
end
"""

# ACQUIRE: take every lock and draw one token, all or nothing, fairly.
# KEYS[1..n]  lock keys, one per resource
# KEYS[n+1]   counters (hash: "token" the fencing token, "ticket" the waiters' arrival order)
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
ACQUIRE = _DRAW_TOKEN + """
local n = #KEYS - 1
local counters = KEYS[n + 1]
local base = string.sub(counters, 1, -9)
local ttl, id, live = ARGV[1], ARGV[3], tonumber(ARGV[4])
local suffix = ':' .. id
local mine, blocked, value = 0, nil, nil
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
local free = not blocked and mine == 0
for i = 1, free and n or 0 do
  if redis.call('EXISTS', base .. 'queue:' .. string.sub(KEYS[i], #base + 6)) == 1 then
    free = false
    break
  end
end
if free then  -- the fast path: nothing held, nobody in line
  value = string.format('%d', draw_token(counters, tonumber(ARGV[2]))) .. suffix
  for i = 1, n do redis.call('SET', KEYS[i], value, 'PX', ttl) end
  return tonumber(string.sub(value, 1, -#suffix - 1))
end
""" + _PRELUDE + """
if mine == n then
  for i = 1, n do
    redis.call('PEXPIRE', KEYS[i], ttl)
    redis.call('ZREM', queue_of(base, KEYS[i]), id)
  end
  forget(base, id)
  redis.call('DEL', base .. 'wake:' .. id)
  return tonumber(string.sub(value, 1, -#suffix - 1))
end
local queued = false
if not blocked then
  for i = 1, n do
    local head = live_head(base, queue_of(base, KEYS[i]))
    if head == id then queued = true
    elseif head then blocked = -1 break end
  end
end
if blocked then
  if live > 0 then
    local now, waiters, wants = now_ms(), base .. 'waiters', base .. 'wants'
    for _, dead in ipairs(redis.call('ZRANGEBYSCORE', waiters, '-inf', now, 'LIMIT', 0, 8)) do
      forget(base, dead)
    end
    local first = queue_of(base, KEYS[1])
    local ticket = redis.call('ZSCORE', first, id)
    if not ticket then ticket = redis.call('HINCRBY', counters, 'ticket', 1) end
    local want = {tonumber(ttl), tonumber(ARGV[2])}
    for i = 1, n do
      local queue = queue_of(base, KEYS[i])
      redis.call('ZADD', queue, 'NX', ticket, id)
      redis.call('PEXPIRE', queue, 2 * live)
      want[i + 2] = KEYS[i]
    end
    redis.call('HSETNX', wants, id, cjson.encode(want))
    redis.call('PEXPIRE', wants, 2 * live)
    redis.call('ZADD', waiters, now + live, id)
    redis.call('PEXPIRE', waiters, 2 * live)
  elseif live < 0 then
    leave(n, base, id)
  end
  return blocked
end
local token = draw_token(counters, tonumber(ARGV[2]))
value = string.format('%d', token) .. suffix
for i = 1, n do redis.call('SET', KEYS[i], value, 'PX', ttl) end
if queued then
  for i = 1, n do redis.call('ZREM', queue_of(base, KEYS[i]), id) end
  forget(base, id)
  redis.call('DEL', base .. 'wake:' .. id)
end
return token
"""

# RELEASE: delete the locks only if every one still holds this lease, and hand
# each resource to its first live waiter (see hand_off).
# KEYS   as ACQUIRE's
# ARGV[1] lease id
# Returns 1: released.  0: not held (expired or taken over): nothing was deleted.
RELEASE = _DRAW_TOKEN + """
local n = #KEYS - 1
local base = string.sub(KEYS[n + 1], 1, -9)
local suffix = ':' .. ARGV[1]
for i = 1, n do
  local value = redis.call('GET', KEYS[i])
  if not value or string.sub(value, -#suffix) ~= suffix then return 0 end
end
local waiting = false
for i = 1, n do
  redis.call('DEL', KEYS[i])
  waiting = waiting
    or redis.call('EXISTS', base .. 'queue:' .. string.sub(KEYS[i], #base + 6)) == 1
end
if not waiting then return 1 end  -- the fast path: nobody to hand over to
""" + _PRELUDE + """
for i = 1, n do hand_off(base, queue_of(base, KEYS[i])) end
return 1
"""

# EXTEND: renew every lock to the full ttl, only if every one still holds this lease.
# KEYS[1..n]  lock keys
# ARGV[1] lease id   ARGV[2] lease ttl ms
# Returns 1: renewed.  0: not held: nothing was changed.
EXTEND = """
local suffix = ':' .. ARGV[1]
for i = 1, #KEYS do
  local value = redis.call('GET', KEYS[i])
  if not value or string.sub(value, -#suffix) ~= suffix then return 0 end
end
for i = 1, #KEYS do redis.call('PEXPIRE', KEYS[i], ARGV[2]) end
return 1
"""

# LEAVE: after a cancelled or failed acquire: release whatever this lease id
# holds, leave the queues, hand off to whoever is first now.
# KEYS   as ACQUIRE's
# ARGV[1] lease id
# Returns 1 (always).
LEAVE = _DRAW_TOKEN + _PRELUDE + """
local n = #KEYS - 1
leave(n, string.sub(KEYS[n + 1], 1, -9), ARGV[1])
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
