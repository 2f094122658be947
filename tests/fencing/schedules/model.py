"""What the explorer knows of the lock's line, and the invariants it checks after each step.

The model does not re-implement the lock: it records what each client asked
for and what Redis answered, reads the lock keys after every step, and checks
the guarantees (see docs/library/schedule-explorer.md):

- safety: no two clients hold leases on one resource that both have time left
  by the server's clock (which is also the clients'), and no client holds a
  lease Redis has given to another lease id, within one Redis lifetime;
- tokens: each grant's token is above every token granted for that resource
  since Redis (re)started, and above the floor its acquire passed;
- FIFO: a waiter that joined a line and stayed live ever since is not passed
  over: no lease joined later (or never) is granted a resource it waits for;
- progress: while no lock key is held on anything the live waiters want,
  some waiter must get its lease by the time every live waiter has polled
  once (one poll round): free resources are never left to everyone's timeout.

A waiter is live while Redis counts it live: from each ACQUIRE that put it in
line, for the liveness that call sent. One whose liveness ran out even once
may have lost its place (the lock drops it lazily), so it gets no FIFO
protection for the rest of its acquire, though it still counts for progress.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field

from fencing.lease import Lease


# The invariants, by the name a violation gives.
SAFETY = "two live leases"
TOKENS = "tokens only grow"
FIFO = "FIFO among live waiters"
PROGRESS = "free resources are taken"
LEFTOVERS = "bounded leftovers"
INVARIANTS = (SAFETY, TOKENS, FIFO, PROGRESS, LEFTOVERS)


def live(lease: Lease) -> bool:
    """Time left on the lease: at least a millisecond, the clock's step (what is less is
    the float noise of `expires_at - now`)."""
    return lease.remaining() >= 0.0005


class Violation(AssertionError):
    """An invariant failed: `invariant` names which, the message says how; the machine
    adds the trace."""

    def __init__(self, invariant: str, detail: str = "") -> None:
        super().__init__(f"{invariant}: {detail}")
        self.invariant = invariant
        self.detail = detail


@dataclass
class Entry:
    """One acquire (one lease id) and its place in line."""

    lease_id: str
    client: int
    resources: tuple[str, ...]
    floor: int
    join_seq: int | None = None   # order of its first join; None: never in line
    deadline_ms: int = 0          # Redis counts it live until then
    lapsed: bool = False          # its liveness ran out at least once
    done: bool = False            # granted, left or gave up: in no line
    alive: bool = True            # its client still waits for it

    def live(self, now: int) -> bool:
        return self.join_seq is not None and not self.done and now < self.deadline_ms

    def protected(self, now: int) -> bool:
        """Owed FIFO: live, its client still waiting, never lapsed."""
        return self.live(now) and self.alive and not self.lapsed


@dataclass
class Window:
    """A stretch of steps in which the same waiters are live and nothing they want is held."""

    members: frozenset[str]
    polled: set[str] = field(default_factory=set)


Holder = tuple[int, str]  # (token, lease id) of a lock key


class Model:
    def __init__(self, resources: tuple[str, ...]) -> None:
        self.resources = resources
        self.epoch = 0
        self.entries: dict[str, Entry] = {}
        self.joins = 0
        self.holders: dict[str, Holder | None] = {name: None for name in resources}
        self.top_token: dict[str, int] = {name: 0 for name in resources}
        self.window: Window | None = None
        self.polls: set[str] = set()
        # How far a schedule got into the protocol's corners: what the search climbs.
        self.reached: Counter[str] = Counter()
        self.found: list[Violation] = []
        self.skipped: frozenset[str] = frozenset()

    def violated(self, invariant: str, detail: str) -> None:
        """Note a violation (the machine raises it after the step) unless that invariant is
        skipped, to look past a failure already known: checking goes on either way."""
        if invariant not in self.skipped:
            self.found.append(Violation(invariant, detail))

    # -- what happened ---------------------------------------------------------------

    def entry(self, lease_id: str, client: int, resources: tuple[str, ...], floor: int) -> Entry:
        self.entries[lease_id] = found = Entry(lease_id, client, resources, floor)
        return found

    def acquire_ran(self, lease_id: str, floor: int, live: int, token: int | None,
                    now: int) -> None:
        """An ACQUIRE ran in Redis (its reply may not have reached the client)."""
        entry = self.entries[lease_id]
        if token is not None:
            entry.done = True
            if token <= floor:
                self.violated(TOKENS, f"ACQUIRE returned token {token}, not above its floor "
                                      f"{floor}")
        elif live > 0:
            if entry.lapsed:
                self.reached["rejoins after a lapse"] += 1
            if entry.join_seq is None:
                self.joins += 1
                entry.join_seq = self.joins
            entry.deadline_ms = now + live
            self.polls.add(lease_id)
        elif live < 0:
            entry.done = True

    def left(self, lease_id: str) -> None:
        """A LEAVE ran: the lease id is in no line any more."""
        self.entries[lease_id].done = True

    def restarted(self) -> None:
        """Redis came back empty: nobody is in line; a new lifetime of tokens begins."""
        self.epoch += 1
        for entry in self.entries.values():
            entry.join_seq, entry.lapsed = None, False
        self.holders = {name: None for name in self.resources}
        self.top_token = {name: 0 for name in self.resources}
        self.window = None

    def time_moved(self, now: int) -> None:
        for entry in self.entries.values():
            if entry.join_seq is not None and not entry.done and now >= entry.deadline_ms:
                entry.lapsed = True

    # -- the checks ------------------------------------------------------------------

    def observe(self, holders: dict[str, Holder | None], now: int) -> list[str]:
        """The lock keys after a step: check each new grant (tokens, FIFO); what changed."""
        changes = []
        for name, holder in holders.items():
            if holder is not None and holder != self.holders[name]:
                self._granted(name, holder, now)
                changes.append(f"{name} -> {holder[0]}:{self._who(holder[1])}")
            elif holder is None and self.holders[name] is not None:
                changes.append(f"{name} free")
        self.holders = dict(holders)
        return changes

    def _granted(self, name: str, holder: Holder, now: int) -> None:
        token, lease_id = holder
        entry = self.entries.get(lease_id)
        if token <= self.top_token[name]:
            self.violated(TOKENS, f"token {token} granted on {name} after token "
                          f"{self.top_token[name]}")
        if entry is not None and token <= entry.floor:
            self.violated(TOKENS, f"token {token} granted on {name} at or below the floor "
                          f"{entry.floor} its acquire passed")
        self.top_token[name] = token
        for other in self.entries.values():
            if (other is not entry and name in other.resources and other.protected(now)
                    and (entry is None or entry.join_seq is None
                         or other.join_seq < entry.join_seq)):  # type: ignore[operator]
                self.violated(
                    FIFO, f"{name} granted to {self._who(lease_id)} (joined "
                    f"{'never' if entry is None or entry.join_seq is None else entry.join_seq})"
                    f" while {self._who(other.lease_id)} (joined {other.join_seq}) "
                    f"has waited for it, live, ever since")
        if entry is not None:
            if entry.join_seq is not None:
                self.reached["grants after waiting"] += 1
            entry.done = True

    def check_leases(self, leases: list[tuple[int, Lease, int]]) -> None:
        """No two live leases on one resource, and none Redis gave to another lease id
        (leases of an earlier Redis lifetime are the stores' to fence, not the lock's)."""
        owner: dict[str, int] = {}
        for client, lease, epoch in leases:
            if epoch != self.epoch or not live(lease):
                continue
            for name in lease.resources:
                if name in owner:
                    self.violated(SAFETY, f"on {name}: c{owner[name]} and c{client} "
                                  f"(token {lease.token}, {lease.remaining():.3f}s left)")
                owner[name] = client
                holder = self.holders[name]
                if holder is None or holder[1] != lease.lease_id:
                    self.violated(
                        SAFETY, f"c{client} holds token {lease.token} on {name} with "
                        f"{lease.remaining():.3f}s left, but Redis has "
                        f"{'nobody' if holder is None else f'token {holder[0]}'} there")

    def check_progress(self, now: int) -> None:
        """One poll round with every wanted resource free must grant someone."""
        polls, self.polls = self.polls, set()
        members = frozenset(e.lease_id for e in self.entries.values() if e.live(now))
        spread = {e.deadline_ms - now for e in self.entries.values() if e.protected(now)}
        self.reached["waiters live at once"] = max(self.reached["waiters live at once"],
                                                   len(members))
        self.reached["liveness spread"] = max(self.reached["liveness spread"], len(spread))
        wanted = {name for e in self.entries.values() if e.live(now) for name in e.resources}
        if not members or any(self.holders[name] is not None for name in wanted):
            self.window = None
            return
        if self.window is None or self.window.members != members:
            self.window = Window(members)
            return
        self.window.polled |= polls & members
        if self.window.polled == members:
            self.violated(
                PROGRESS, f"{', '.join(sorted(wanted))} free, and every live waiter "
                f"({', '.join(self._who(i) for i in sorted(members))}) polled without "
                f"getting its lease")
            self.window = None

    def _who(self, lease_id: str) -> str:
        entry = self.entries.get(lease_id)
        return lease_id if entry is None else f"c{entry.client}/{lease_id}"
