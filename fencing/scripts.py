"""The Lua scripts of the lock, each one atomic step on the Redis server.

The async `fencing.FencedLock` and the sync `fencing.sync.FencedLock` run these
same scripts on the same keys, so their leases exclude each other and their
tokens come from the same counters.

Every key a script reads or writes is one of its KEYS (Redis's scripting
rule): a strict server (Dragonfly, Kvrocks with lua-strict-key-accessing) runs
them, and on a Redis Cluster a slot that is migrating is met with TRYAGAIN or
ASK before a script runs, never half-way. Half-way is still possible in one
way, which the scripts avoid: while its slot migrates, Redis checks each
command inside a script too, and a key the script itself removed earlier (a
DEL, the last member of a set) counts as moved away: the script stops there
with its writes done. So a script never touches a key after it may have
removed it: a lock it frees is deleted last (a hand-off overwrites it
instead), the shared sets and hashes keep a sentinel member ("") while in use
and are deleted, when only the sentinel is left, at the very end (`tidy`),
and every command inside names a single key (a multi-key command meets
TRYAGAIN on the importing side). A release therefore grants the lease
only to a waiter whose resources are all among the releaser's, and cannot push
onto the waiter's wake list itself: it returns the wake keys and tokens to
notify, and the client sends NOTIFY for each (a notification that is lost
costs that waiter at most its `max_poll`: its own ACQUIRE finds the grant).

Every script's header lists its KEYS, ARGV and answers; the helpers at the end
read the answers in one place. Scripts are registered once per lock, so a call
is one EVALSHA (the source is re-sent by itself after a Redis restart emptied
the script cache). Redis 5 or later: scripts call TIME and then write, which
needs effects replication (the default since 5).

A lock key holds "<token>:<lease id>". Ownership is decided by the lease id,
a 128-bit random string chosen by the client: even if a token repeats, a lease
can never release or extend another's lock. Tokens and tickets are carried as
decimal strings wherever they pass through cjson (it keeps 14 digits); as Lua
numbers they are exact below 2^53 (`MAX_FLOOR`).

Every script is idempotent for its lease id, so a call whose answer was lost
may be sent again: ACQUIRE returns the lease it granted before (renewed),
RELEASE, EXTEND and LEAVE find their work done or do it again, NOTIFY pushes
the same message again.
"""

from __future__ import annotations

import enum
from typing import Any, NamedTuple

# Tokens and tickets are Lua numbers (doubles) inside the scripts.
MAX_FLOOR = 2**53 - 2**40

# The layout of KEYS every script but EXTEND and NOTIFY shares (see keys.LeaseKeys):
# KEYS[1..n] lock keys, KEYS[n+1..2n] their queues, then for the call's m key spaces
# KEYS[S+j] seq, KEYS[W+j] waiters, KEYS[H+j] wants (S = 2n, W = 2n+m, H = 2n+2m);
# ACQUIRE and LEAVE end with the caller's wake key. ARGV[layout] is n, and with several
# key spaces ARGV[layout+i] is resource i's key space j. The fast paths read the locks,
# the queues and the seqs only, so ACQUIRE and RELEASE also take just the first part of
# the layout (`fast` below): they answer ALL_KEYS when they need the rest.
# `draw` and `keep` come before a script's fast path (a `local function` costs a
# closure each run), the rest after it.
_LAYOUT = """
local m = 1
for i = layout + 1, #ARGV do
  local j = tonumber(ARGV[i])
  if j > m then m = j end
end
local S, W, H = 2 * n, 2 * n + m, 2 * n + 2 * m
"""

_COUNTERS = """
local clock = nil
local function clock_us()
  if not clock then
    local t = redis.call('TIME')
    clock = tonumber(t[1]) * 1000000 + tonumber(t[2])
  end
  return clock
end
-- The next value of counter `field` ("token" or "ticket") over key spaces `js` (nil:
-- all of the call's): above each of their counters, and above `floor`. A counter
-- that is missing (it expired with the last lease or waiter that used it) starts
-- at Redis's clock in microseconds, above any value it had: fewer than one value
-- is drawn per microsecond, so a resource's tokens only grow.
local function draw(field, js, floor)
  local count = js and #js or m
  if count == 1 then
    local seq = KEYS[S + (js and js[1] or 1)]
    local value = redis.call('HINCRBY', seq, field, 1)
    if value > 1 and value > floor then return value end
    value = (value == 1 and math.max(clock_us(), floor) or floor) + 1
    redis.call('HSET', seq, field, string.format('%d', value))
    return value
  end
  local top = floor
  for k = 1, count do
    local value = redis.call('HGET', KEYS[S + (js and js[k] or k)], field)
    value = value and tonumber(value) or clock_us()
    if value > top then top = value end
  end
  top = top + 1
  for k = 1, count do
    redis.call('HSET', KEYS[S + (js and js[k] or k)], field, string.format('%d', top))
  end
  return top
end
-- At least `ms` left before `key` expires. A shared key's expiry is only ever
-- lengthened (to twice `ms`, so a busy key is touched about once per `ms`): whoever
-- wrote it last must not cut short what another still needs. (PEXPIRE ... GT
-- would say it in one command; it needs Redis 7.)
local function keep(key, ms)
  if redis.call('PTTL', key) < ms then redis.call('PEXPIRE', key, 2 * ms) end
end
"""

_PRELUDE = """
local function space(i)
  if m == 1 then return 1 end
  return tonumber(ARGV[layout + i])
end
local function forget(who, j)
  redis.call('ZREM', KEYS[W + j], who)
  redis.call('HDEL', KEYS[H + j], who)
end
-- Locks this call frees: true until a hand-off takes them over; deleted by `tidy`.
local freed = {}
local function free(i)
  if freed[i] ~= nil then return freed[i] end
  return redis.call('EXISTS', KEYS[i]) == 0
end
-- The very end of a script on the slow path: delete the locks it freed and did not
-- hand on, and the queues, waiters and wants left with their sentinel alone.
local function tidy()
  for i = 1, n do
    if freed[i] then redis.call('DEL', KEYS[i]) end
    if redis.call('ZCARD', KEYS[n + i]) == 1 then redis.call('DEL', KEYS[n + i]) end
  end
  for j = 1, m do
    if redis.call('ZCARD', KEYS[W + j]) == 1 then redis.call('DEL', KEYS[W + j]) end
    if redis.call('HLEN', KEYS[H + j]) == 1 then redis.call('DEL', KEYS[H + j]) end
  end
end
-- The first live waiter of resource i's queue, dropping the dead ones ahead of it.
-- A waiter is live while its deadline in its key space's `waiters` lies ahead; it
-- is the same in each of its key spaces, so a waiter is dead in all its queues or
-- in none, and one dropped here is dropped everywhere it waits.
local function live_head(i)
  local j = space(i)
  local queue, waiters = KEYS[n + i], KEYS[W + j]
  while true do
    local head = redis.call('ZRANGE', queue, 0, 0)[1]
    if not head or head == '' then return nil end  -- empty, or the sentinel alone
    local deadline = redis.call('ZSCORE', waiters, head)
    if deadline and tonumber(deadline) > math.floor(clock_us() / 1000) then return head end
    redis.call('ZREM', queue, head)
    forget(head, j)
  end
end
-- The answer's tail: pairs of a waiter's wake key and what to push onto it.
local notes, seen, index = {}, {}, nil
local function note(wake, token)
  notes[#notes + 1] = wake
  notes[#notes + 1] = token
end
-- Direct hand-off of resource i: grant the lease to the first live waiter of its
-- queue if every lock it waits for is one of this call's, free, and it is first in
-- line for each (new token, its own ttl); else only wake it to try again itself.
local function hand_off(i)
  local head = live_head(i)
  if not head or seen[head] then return end
  seen[head] = true
  local want = redis.call('HGET', KEYS[H + space(i)], head)
  if not want then return end
  want = cjson.decode(want)  -- {ticket, ttl, floor, wake key, lock keys...}: strings
  if type(want[1]) ~= 'string' then return end  -- left by the scheme before: it dies out
  if not index then
    index = {}
    for k = 1, n do index[KEYS[k]] = k end
  end
  local at, js, has = {}, {}, {}
  for k = 5, #want do
    local other = index[want[k]]
    if not other or not free(other) or live_head(other) ~= head then
      note(want[4], '0')
      return
    end
    at[#at + 1] = other
    local j = space(other)
    if not has[j] then
      has[j] = true
      js[#js + 1] = j
    end
  end
  local token = string.format('%d', draw('token', js, tonumber(want[3])))
  for _, k in ipairs(at) do
    redis.call('SET', KEYS[k], token .. ':' .. head, 'PX', want[2])
    freed[k] = false
    redis.call('ZREM', KEYS[n + k], head)
  end
  for _, j in ipairs(js) do
    forget(head, j)
    keep(KEYS[S + j], tonumber(want[2]))
  end
  note(want[4], token)
end
-- A waiter leaves: release any lock it holds (a grant it never saw, or an acquire
-- whose answer was lost), leave every queue, and hand off what it freed or was
-- first in line for.
local function leave(id, wake)
  local suffix = ':' .. id
  local pass = {}
  for i = 1, n do
    local value = redis.call('GET', KEYS[i])
    if value and string.sub(value, -#suffix) == suffix then
      freed[i] = true
      pass[i] = true
    end
  end
  for i = 1, n do
    if live_head(i) == id then pass[i] = true end
    redis.call('ZREM', KEYS[n + i], id)
  end
  for j = 1, m do forget(id, j) end
  redis.call('DEL', wake)
  for i = 1, n do
    if pass[i] then hand_off(i) end
  end
end
local function with_notes(answer)
  for _, value in ipairs(notes) do answer[#answer + 1] = value end
  return answer
end
"""

# ACQUIRE: take every lock and draw one token, all or nothing, fairly.
# KEYS   the shared layout, then the caller's wake key; or its fast part alone (locks,
#        queues, seqs): then only the fast path runs, and a one try's busy answer
#        when a lock is held; anything else answers ALL_KEYS (call again with every key)
# ARGV[1] lease ttl ms   ARGV[2] floor (0: none)   ARGV[3] lease id
# ARGV[4] waiter liveness ms when busy: > 0 wait in line (join, or stay and refresh);
#         0 one try (do not join); < 0 give up (leave the line)
# ARGV[5..] layout
# If every lock already holds this lease id (a retry whose first try ran, or a
# hand-off the waiter has not seen yet), the same lease is returned, renewed.
# Returns
#   an integer > 0   acquired: the token (no array to parse on the hot path)
#   -1               ALL_KEYS (only when called with the fast part of the layout)
#   an array         busy: {hint, counter, wake key, token, ...}; hint -1: a waiter that
#                    came first is in the way (FIFO), or a lock without expiry; < -1: the
#                    lock in the way expires in (-hint - 2) ms. counter: the token
#                    counter now (a string): any grant to this waiter from now on has a
#                    higher token, so a wake message with a token at or below it is
#                    stale. Then the waiters to notify (a give-up handed on).
ACQUIRE = """
local ttl, id = ARGV[1], ARGV[3]
local floor = ARGV[2] == '0' and 0 or tonumber(ARGV[2])  -- tonumber is a strtod: skip it
local layout = 5
local n = tonumber(ARGV[layout])
""" + _LAYOUT + _COUNTERS + """
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
local clear = not blocked and mine == 0
for i = 1, clear and n or 0 do
  if redis.call('ZCARD', KEYS[n + i]) > 1 then  -- waiters, besides the sentinel
    clear = false
    break
  end
end
if clear then  -- the fast path: nothing held, nobody in line
  local token = draw('token', nil, floor)
  value = string.format('%d', token) .. suffix
  for i = 1, n do redis.call('SET', KEYS[i], value, 'PX', ttl) end
  for j = 1, m do keep(KEYS[S + j], tonumber(ttl)) end
  return token
end
local live = tonumber(ARGV[4])
-- The token counter now (a string): any grant to this caller from now on draws higher.
local function counter_now()
  local counter = 0
  for j = 1, m do
    local top = redis.call('HGET', KEYS[S + j], 'token')
    top = top and tonumber(top) or clock_us()
    if top > counter then counter = top end
  end
  return string.format('%d', counter)
end
if #KEYS == W then  -- the fast part of the layout only
  if blocked and live == 0 then return {blocked, counter_now()} end  -- one try, held
  return -1
end
""" + _PRELUDE + """
local wake = KEYS[#KEYS]
local function done_waiting()
  for i = 1, n do redis.call('ZREM', KEYS[n + i], id) end
  for j = 1, m do forget(id, j) end
  redis.call('DEL', wake)
end
if mine == n then
  for i = 1, n do redis.call('PEXPIRE', KEYS[i], ttl) end
  done_waiting()
  tidy()
  return tonumber(string.sub(value, 1, -#suffix - 1))
end
if not blocked then
  for i = 1, n do
    local head = live_head(i)
    if head and head ~= id then
      blocked = -1
      break
    end
  end
end
if blocked then
  local answer = {blocked, counter_now()}
  if live > 0 then
    -- Join the line, or stay in it: one ticket for all the waiter's queues, kept
    -- in `wants` and written to every queue each time (a queue that dropped it
    -- while it stalled gets it back, never a second one).
    local now = math.floor(clock_us() / 1000)
    local ticket = nil
    for j = 1, m do
      for _, dead in ipairs(redis.call('ZRANGEBYSCORE', KEYS[W + j], '-inf', now,
                                       'LIMIT', 0, 8)) do
        forget(dead, j)
      end
      local want = redis.call('HGET', KEYS[H + j], id)
      if want and not ticket then ticket = cjson.decode(want)[1] end
    end
    ticket = ticket or string.format('%d', draw('ticket', nil, 0))
    local want = {ticket, ttl, ARGV[2], wake}
    for i = 1, n do
      want[4 + i] = KEYS[i]
      redis.call('ZADD', KEYS[n + i], ticket, id, 'inf', '')
      keep(KEYS[n + i], live)
    end
    want = cjson.encode(want)
    for j = 1, m do
      redis.call('HSET', KEYS[H + j], id, want, '', '')
      redis.call('ZADD', KEYS[W + j], now + live, id, 'inf', '')
      keep(KEYS[H + j], live)
      keep(KEYS[W + j], live)
      keep(KEYS[S + j], live)
    end
    redis.call('DEL', wake)  -- whatever it holds predates this turn
  elseif live < 0 then
    leave(id, wake)
  end
  tidy()
  return with_notes(answer)
end
local token = draw('token', nil, floor)
value = string.format('%d', token) .. suffix
for i = 1, n do redis.call('SET', KEYS[i], value, 'PX', ttl) end
for j = 1, m do keep(KEYS[S + j], tonumber(ttl)) end
done_waiting()
tidy()
return token
"""

# RELEASE: delete the locks only if every one still holds this lease, and hand
# each resource to its first live waiter (see hand_off).
# KEYS   the shared layout, or its fast part alone (locks, queues, seqs): then only the
#        fast path runs (nobody waits), and a hand-off answers ALL_KEYS
# ARGV[1] lease id   ARGV[2..] layout
# Returns 0: not held (expired or taken over): nothing was deleted.  1: released.
#   {1, wake key, token, ...}: released, and these waiters are to be notified.
#   -1: ALL_KEYS, nothing was changed (only when called with the fast part).
RELEASE = """
local id = ARGV[1]
local layout = 2
local n = tonumber(ARGV[layout])
local suffix = ':' .. id
for i = 1, n do
  local value = redis.call('GET', KEYS[i])
  if not value or string.sub(value, -#suffix) ~= suffix then return 0 end
end
local waiting = false
for i = 1, n do
  if redis.call('ZCARD', KEYS[n + i]) > 1 then  -- waiters, besides the sentinel
    waiting = true
    break
  end
end
if not waiting then  -- the fast path: nobody to hand over to
  for i = 1, n do redis.call('DEL', KEYS[i]) end
  return 1
end
""" + _LAYOUT + """
if #KEYS == W then return -1 end  -- the fast part of the layout only
""" + _COUNTERS + _PRELUDE + """
for i = 1, n do freed[i] = true end
for i = 1, n do hand_off(i) end
tidy()
if #notes == 0 then return 1 end
return with_notes({1})
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
# KEYS   the shared layout, then the caller's wake key
# ARGV[1] lease id   ARGV[2..] layout
# Returns 1, or {1, wake key, token, ...}: these waiters are to be notified.
LEAVE = """
local id = ARGV[1]
local layout = 2
local n = tonumber(ARGV[layout])
""" + _LAYOUT + _COUNTERS + _PRELUDE + """
leave(id, KEYS[#KEYS])
tidy()
if #notes == 0 then return 1 end
return with_notes({1})
"""

# NOTIFY: tell a waiter what a release or a leave did for it.
# KEYS[1] the waiter's wake key   ARGV[1] the token granted to it, or 0 (try again)
# Returns 1. Only the newest message is kept, for a few seconds: a waiter trusts
# a token only above the counter its last ACQUIRE saw (see ACQUIRE).
NOTIFY = """
redis.call('LPUSH', KEYS[1], ARGV[1])
redis.call('LTRIM', KEYS[1], 0, 0)
redis.call('PEXPIRE', KEYS[1], 5000)
return 1
"""


class Outcome(enum.IntEnum):
    """What RELEASE, EXTEND and LEAVE return (first, when they return an array)."""

    NOT_HELD = 0
    DONE = 1
    ALL_KEYS = -1  # called with the fast part of the layout, ACQUIRE's or RELEASE's


Notes = list[tuple[Any, Any]]


class Busy(NamedTuple):
    """A busy ACQUIRE's answer."""

    expires_in: float | None  # seconds until the lock in the way expires, if known
    counter: int              # a wake message's token must be above it
    notes: Notes              # (wake key, message) of each waiter to notify


def needs_all_keys(answer: Any) -> bool:
    """ACQUIRE's or RELEASE's answer to a call with the fast part of the layout: the
    fast path did not decide, call again with every key."""
    return answer == Outcome.ALL_KEYS


def acquired_token(answer: Any) -> int | None:
    """ACQUIRE's answer: the token, or None when busy."""
    return answer if isinstance(answer, int) and answer > 0 else None


def busy(answer: Any) -> Busy:
    """A busy ACQUIRE's answer, read."""
    hint = int(answer[0])
    return Busy((-hint - 2) / 1000 if hint < -1 else None, int(answer[1]), notes(answer, 2))


def outcome(answer: Any) -> tuple[int, Notes]:
    """RELEASE's or LEAVE's answer: the outcome, and the waiters to notify."""
    if isinstance(answer, int):
        return answer, []
    return int(answer[0]), notes(answer, 1)


def notes(answer: Any, start: int) -> Notes:
    return [(answer[k], answer[k + 1]) for k in range(start, len(answer) - 1, 2)]


def granted_token(popped: Any, counter: int) -> int | None:
    """What a waiter's BLPOP returned: the token of a grant made during its current turn,
    or None (woken to try again, timed out, or a message older than its turn)."""
    if popped is None:
        return None
    token = int(popped[1])
    return token if token > counter else None
