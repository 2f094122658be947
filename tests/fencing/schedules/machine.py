"""The schedule explorer: Hypothesis drives several clients of the lock, one Redis call
at a time, and checks the lock's guarantees after every step (see `model`).

Each rule is one step of a schedule: a client starts an operation, sends its
next call (and gets the reply at once, or has it held back in the network),
receives a held reply, is cancelled or crashes; the clock moves; Redis restarts
empty. Hypothesis picks the steps, and on a failure shrinks them and prints
them as code (`state = ScheduleMachine()`, `state.send(client=0, hold=False)`,
...) which `python -m tests.fencing.schedules replay FILE` runs again, exactly:
lease ids are numbered, and time moves only when a step moves it.
"""

from __future__ import annotations

import contextlib
from dataclasses import dataclass
from typing import Any, Callable, Iterator

import hypothesis.stateful
import hypothesis.strategies as st
from hypothesis import target
from hypothesis.control import currently_in_test_context
from hypothesis.stateful import RuleBasedStateMachine, initialize, precondition, rule

from fencing.lease import Lease
from tests.fencing.schedules import adapter
from tests.fencing.schedules.adapter import Call, Operation
from tests.fencing.schedules.model import LEFTOVERS, Model, Violation, live
from tests.fencing.schedules.world import World

RESOURCE_SETS = (("{r}a",), ("{r}a", "{r}b"), ("{r}b",), ("{r}b", "{r}a"))
TIMEOUTS = (10.0, None, 1.0)
# Steps of the clock, in ms: a fast poll, a short lease, a fast waiter's liveness, a slow
# waiter's line (longer steps end every lease and line at once: nothing left to explore).
# Mostly short ones: picked as often as any client's step, long ones would end most leases
# and lines before anything else happened.
ADVANCES = (100, 100, 100, 500, 1000, 2500)
# Longer than any TTL the lock sets here: leases (3 s), waiters' lines (2 x 5 s), wake lists.
LONGEST_TTL_MS = 60_000
TRACE_LINES = 60
# What the search climbs (see `teardown`): where stale wake messages, split tickets and
# lines of mixed liveness come from.
GUIDES = ("grants to a waiter not waiting", "rejoins after a lapse", "liveness spread")
# Cancellations, crashes and restarts per schedule at most: enough for the faults that matter,
# few enough that schedules still get far (picked as often as any step, they would end most
# clients early); a third of the schedules have none.
MAX_FAULTS = 2


class EveryRule(st.SearchStrategy[Any]):
    """Every rule enabled in every schedule.

    Hypothesis's swarm testing turns a random share of the rules off for each
    schedule (on average half). Here most rules are steps of one protocol that
    mean nothing alone: with `send` or `acquire` off a schedule tests nothing,
    and measured, two schedules in three were spent so. A private seam
    (`hypothesis.stateful.FeatureStrategy`); if it goes, swarm testing is back,
    which costs time, not correctness.
    """

    def do_draw(self, data: Any) -> Any:
        from hypothesis.strategies._internal.featureflags import FeatureFlags
        return FeatureFlags(None)


if hasattr(hypothesis.stateful, "FeatureStrategy"):
    hypothesis.stateful.FeatureStrategy = lambda at_least_one_of=(): EveryRule()  # type: ignore


@dataclass
class Client:
    index: int
    lock: Any
    acquires: int = 0
    op: Operation | None = None
    op_name: str = ""
    lease_id: str = ""            # the current acquire's
    resources: tuple[str, ...] = ()
    pending: Call | None = None   # asked for, not sent
    blocked_until: int | None = None  # a WAIT sent, nothing popped yet
    has_reply: bool = False       # sent, its reply held back
    reply: Any = None
    reply_epoch: int = 0
    lease: Lease | None = None
    lease_epoch: int = 0

    @property
    def idle(self) -> bool:
        return self.op is None

    def drop(self) -> None:
        self.op, self.op_name, self.pending = None, "", None
        self.blocked_until, self.has_reply, self.reply = None, False, None


def clients_where(test: Callable[[Client], bool]) -> st.SearchStrategy[int]:
    """A client index among those `test` accepts (drawn from the machine's state)."""
    return st.runner().flatmap(lambda machine: st.sampled_from(
        [c.index for c in machine.clients if test(c)]))


def any_client(test: Callable[[Client], bool]) -> Callable[[Any], bool]:
    return lambda machine: any(test(c) for c in machine.clients)


def can_start(c: Client) -> bool:
    return c.idle and (c.lease is None or not live(c.lease))


def can_send(c: Client) -> bool:
    return c.pending is not None and c.blocked_until is None and not c.has_reply


def has_reply(c: Client) -> bool:
    return c.has_reply


def holds(c: Client) -> bool:
    return c.idle and c.lease is not None


def acquiring(c: Client) -> bool:
    return c.op_name == "acquire"


def busy(c: Client) -> bool:
    return not c.idle or c.lease is not None


class ScheduleMachine(RuleBasedStateMachine):
    """See the module docstring; `World.current()` is the Redis and clock it runs on."""

    steps_run = 0
    schedules_run = 0
    # (schedules, steps) run when the first violation was seen, before any shrinking.
    first_failure: tuple[int, int] | None = None
    # Invariants not checked, to look past a failure already known (explore --skip).
    skipped: frozenset[str] = frozenset()

    def __init__(self) -> None:
        super().__init__()
        self.world = World.current()
        self.redis = self.world.redis
        self.clock = self.world.clock
        # The clients' clock starts at 0 in every schedule, so that its floats, and with
        # them every decision, are the same however long the run has gone on.
        self.t0 = self.clock.now_ms
        self.model = Model(adapter.RESOURCES)
        self.model.skipped = self.skipped
        self.clients: list[Client] = []
        self.trace: list[str] = []
        self.restarts = 0
        self.faults = 0
        self.store: dict[str, int] = {}
        self.failed = False
        self.redis.flushall()
        ScheduleMachine.schedules_run += 1

    # -- the steps -------------------------------------------------------------------

    @initialize(clients=st.integers(2, 4), floor_base=st.sampled_from((0, 10**15)),
                faults=st.integers(0, MAX_FAULTS))
    def setup(self, clients: int, floor_base: int, faults: int = MAX_FAULTS) -> None:
        """How many clients (their settings: adapter.CLIENTS); the highest token the
        stores have accepted before the run (a floor of 10^15 tests big tokens); how many
        faults (cancellations, crashes, a restart) the schedule may hold."""
        self.faults = MAX_FAULTS - faults
        self.clients = [Client(i, adapter.make_lock(self.redis, adapter.CLIENTS[i], self.seconds))
                        for i in range(clients)]
        self.store = {name: floor_base for name in adapter.RESOURCES}
        self.log(f"{clients} clients {adapter.CLIENTS[:clients]}, stores at {floor_base}, "
                 f"{faults} faults at most")

    @precondition(any_client(can_start))
    @rule(client=clients_where(can_start), resources=st.sampled_from(RESOURCE_SETS),
          timeout=st.sampled_from(TIMEOUTS))
    def acquire(self, client: int, resources: tuple[str, ...], timeout: float | None) -> None:
        """The client starts an acquire, passing the stores' highest token as its floor."""
        c = self.pick(client, can_start)
        if c is None:
            return
        c.lease, c.acquires = None, c.acquires + 1
        c.lease_id, c.resources = f"c{client}-{c.acquires}", resources
        floor = max(self.store[name] for name in resources)
        self.model.entry(c.lease_id, client, resources, floor)
        self.start(c, "acquire",
                   adapter.acquiring(c.lock, resources, c.lease_id, timeout, floor),
                   f"acquire {'+'.join(resources)} timeout={timeout} floor={floor}")

    @precondition(any_client(can_send))
    @rule(client=clients_where(can_send))
    def step(self, client: int) -> None:
        """The client's next call runs in Redis and its reply arrives at once."""
        self.send_call(client, deliver=True)

    @precondition(any_client(can_send))
    @rule(client=clients_where(can_send))
    def send(self, client: int) -> None:
        """The client's next call runs in Redis; its reply is held back (a slow network, a
        paused process) until a `deliver` step."""
        self.send_call(client, deliver=False)

    @precondition(any_client(has_reply))
    @rule(client=clients_where(has_reply))
    def deliver(self, client: int) -> None:
        """A held-back reply reaches its client."""
        c = self.pick(client, has_reply)
        if c is None:
            return
        self.deliver_reply(c)
        self.after_step()

    @precondition(any_client(holds))
    @rule(client=clients_where(holds))
    def release(self, client: int) -> None:
        c = self.pick(client, holds)
        if c is None:
            return
        lease, c.lease = c.lease, None
        assert lease is not None
        self.start(c, "release", adapter.releasing(c.lock, lease), f"release {lease.token}")

    @precondition(any_client(holds))
    @rule(client=clients_where(holds))
    def extend(self, client: int) -> None:
        c = self.pick(client, holds)
        if c is None:
            return
        assert c.lease is not None
        self.start(c, "extend", adapter.extending(c.lock, c.lease), f"extend {c.lease.token}")

    @precondition(lambda self: self.faults < MAX_FAULTS and any_client(acquiring)(self))
    @rule(client=clients_where(acquiring), landed=st.booleans())
    def cancel(self, client: int, landed: bool) -> None:
        """The acquire is cancelled: a call not sent yet runs anyway if `landed`; any reply
        is lost; the lock's clean-up (LEAVE) is the client's next call."""
        c = self.pick(client, acquiring)
        if c is None:
            return
        self.faults += 1
        self.abandon(c, landed)
        self.model.entries[c.lease_id].alive = False
        self.start(c, "leave", adapter.leaving(c.lock, c.resources, c.lease_id),
                   f"cancelled (landed={landed}), leave")

    @precondition(lambda self: self.faults < MAX_FAULTS and any_client(busy)(self))
    @rule(client=clients_where(busy), landed=st.booleans())
    def crash(self, client: int, landed: bool) -> None:
        """The client dies: a call not sent yet runs anyway if `landed`; nothing else of it
        reaches Redis again, and its lease is gone with it."""
        c = self.pick(client, busy)
        if c is None:
            return
        self.faults += 1
        self.abandon(c, landed)
        if c.op_name == "acquire":
            self.model.entries[c.lease_id].alive = False
        c.drop()
        c.lease = None
        self.log(f"c{client} crashed (landed={landed})")
        self.after_step()

    @rule(ms=st.sampled_from(ADVANCES))
    def advance(self, ms: int) -> None:
        """Time moves for everyone: the clients' clock and Redis's."""
        self.clock.advance(ms)
        now = self.now()
        self.model.time_moved(now)
        for c in self.clients:
            if c.blocked_until is not None and now >= c.blocked_until:
                self.got_reply(c, None)
                self.log(f"c{c.index} WAIT timed out")
        self.log(f"clock +{ms} ms = {now}")
        self.after_step()

    @precondition(lambda self: self.faults < MAX_FAULTS and self.restarts == 0)
    @rule()
    def restart_redis(self) -> None:
        """Redis restarts empty (no persistence): keys and scripts are gone."""
        self.restarts += 1
        self.faults += 1
        self.redis.flushall()
        self.redis.script_flush()
        self.model.restarted()
        self.log("Redis restarted empty")
        self.after_step()

    def teardown(self) -> None:
        """Once every client is gone and the longest TTL has passed, only the keys the key
        scheme lets stay are left."""
        # Steer the search toward the protocol's corners: Hypothesis climbs each count.
        if currently_in_test_context():  # not in a replay
            for label in GUIDES:
                target(float(self.model.reached[label]), label=label)
        if self.failed or not self.clients:
            return
        for c in self.clients:
            c.drop()
            c.lease = None
        self.clock.advance(LONGEST_TTL_MS)
        left = {key.decode() for key in self.redis.keys(f"{adapter.PREFIX}*")}
        extra = left - adapter.allowed_leftovers(adapter.RESOURCES)
        if extra and LEFTOVERS not in self.skipped:
            self.fail(Violation(LEFTOVERS, f"left after every client and TTL: {sorted(extra)}"))

    # -- driving a client ------------------------------------------------------------

    def send_call(self, client: int, deliver: bool) -> None:
        c = self.pick(client, can_send)
        if c is None:
            return
        self.run_pending(c)
        if deliver and c.has_reply:
            self.deliver_reply(c)
        self.after_step()

    def pick(self, client: int, test: Callable[[Client], bool]) -> Client | None:
        """The client a step names, if the step applies to it. Hypothesis only draws steps
        that apply; a replayed schedule may hold one that no longer does (the lock now
        makes other calls), and it is skipped, noted in the trace."""
        if client < len(self.clients) and test(self.clients[client]):
            return self.clients[client]
        self.log(f"(skipped: c{client} is not in a state where {test.__name__} applies)")
        return None

    def start(self, c: Client, name: str, op: Operation, what: str) -> None:
        c.drop()
        c.op, c.op_name = op, name
        self.log(f"c{c.index} {what}")
        self.next_call(c, None, first=True)
        self.after_step()

    def next_call(self, c: Client, reply: Any, first: bool = False) -> None:
        assert c.op is not None
        try:
            c.pending = next(c.op) if first else c.op.send(reply)
        except StopIteration as end:
            self.finished(c, end.value)

    def finished(self, c: Client, value: Any) -> None:
        name = c.op_name
        c.drop()
        if name == "acquire":
            self.model.entries[c.lease_id].alive = False
            if isinstance(value, Lease):
                c.lease, c.lease_epoch = value, c.reply_epoch
                for resource in value.resources:  # the holder writes with its token at once
                    self.store[resource] = max(self.store[resource], value.token)
        self.log(f"c{c.index} {name} -> {value!r}")

    def run_pending(self, c: Client) -> None:
        """The pending call runs in Redis now; its reply is held until delivered."""
        call = c.pending
        assert call is not None
        done, reply = adapter.execute(self.redis, call)
        self.ran(c, call, done, reply)

    def ran(self, c: Client, call: Call, done: bool, reply: Any) -> None:
        request = adapter.acquire_request(call)
        if request is not None:
            lease_id, floor, live = request
            with self.checking():
                self.model.acquire_ran(lease_id, floor, live, adapter.acquired_token(reply),
                                       self.now())
        leaving = adapter.leaving_id(call)
        if leaving is not None:
            self.model.left(leaving)
        if done:
            self.log(f"c{c.index} {call} -> {reply!r}")
            self.got_reply(c, reply)
        else:
            c.blocked_until = self.now() + adapter.wait_ms(call)
            self.log(f"c{c.index} {call}: blocked until {c.blocked_until}")

    def got_reply(self, c: Client, reply: Any) -> None:
        c.pending, c.blocked_until = None, None
        c.has_reply, c.reply, c.reply_epoch = True, reply, self.model.epoch

    def deliver_reply(self, c: Client) -> None:
        reply = c.reply
        c.has_reply, c.reply = False, None
        self.next_call(c, reply)

    def abandon(self, c: Client, landed: bool) -> None:
        if landed and can_send(c):
            self.run_pending(c)

    # -- after every step ------------------------------------------------------------

    def after_step(self) -> None:
        ScheduleMachine.steps_run += 1
        with self.checking():
            for c in self.clients:  # Redis serves a blocked BLPOP as soon as a value arrives
                if c.blocked_until is not None and c.pending is not None:
                    done, reply = adapter.execute(self.redis, c.pending)
                    if done:
                        self.model.reached["woken waiters"] += 1
                        self.log(f"c{c.index} WAIT woken -> {reply!r}")
                        self.got_reply(c, reply)
            now = self.now()
            lock = self.clients[0].lock
            values = self.redis.mget([adapter.lock_key(lock, name) for name in adapter.RESOURCES])
            holders = {name: adapter.holder_of(value)
                       for name, value in zip(adapter.RESOURCES, values)}
            before = dict(self.model.holders)
            for change in self.model.observe(holders, now):
                self.log(f"   {change}")
            self.note_unwaited_grants(before, holders)
            self.model.check_leases([(c.index, c.lease, c.lease_epoch) for c in self.clients
                                     if c.lease is not None])
            self.model.check_progress(now)

    def note_unwaited_grants(self, before: dict[str, Any], after: dict[str, Any]) -> None:
        """Grants to a waiter not blocked on its wake list at the time (its BLPOP timed
        out, or not sent yet): where a wake message can outlive what it announces."""
        for name, holder in after.items():
            entry = self.model.entries.get(holder[1]) if holder and holder != before[name] \
                else None
            if entry is not None and entry.join_seq is not None:
                c = self.clients[entry.client]
                if c.lease_id == entry.lease_id and c.blocked_until is None:
                    self.model.reached["grants to a waiter not waiting"] += 1

    @contextlib.contextmanager
    def checking(self) -> Iterator[None]:
        """Raise what the model found wrong during the block, with the trace."""
        yield
        if self.model.found:
            self.fail(self.model.found[0])

    def fail(self, exc: Violation) -> None:
        self.failed = True
        if ScheduleMachine.first_failure is None:
            ScheduleMachine.first_failure = (self.schedules_run, self.steps_run)
        trace = "\n".join(self.trace[-TRACE_LINES:])
        raise Violation(exc.invariant, f"{exc.detail}\n-- what happened (the last steps) --\n"
                        f"{trace}") from None

    def now(self) -> int:
        """Milliseconds since the schedule began."""
        return self.clock.now_ms - self.t0

    def seconds(self) -> float:
        return self.now() / 1000

    def log(self, line: str) -> None:
        self.trace.append(f"[{self.now():>6} ms] {line}")
