"""Every interleaving of two flows on one order, run in-process, step by step.

A flow is one of the services' own paths, called on the service object, not
over HTTP: an update, a delete, a create (with an Idempotency-Key, so that two
creates are one order), the inline settle (an update that meets an intent left
by a holder that was cut off), the background settle and the rollback of a
create (the repairer's two jobs). A flow's steps are its fault points, the
named steps of the flow, and the return of each of its calls to invoices.

A schedule: flow A runs to its i-th step and stops there, its lease expired, as
a frozen process would be; flow B runs to its j-th step (or to its end) and
stops; then both are resumed, A to its end before B, or B before A. Then the
leases expire, the repairer runs a pass over what is left, and the checks run:

- the order and its invoice agree (both live with one total, both deleted, or
  no live invoice for an order that does not exist), and no intent or pending
  order is left;
- no change answered 2xx was undone by an older one: the order is deleted if a
  delete answered 204, else it holds the update answered 200 with the highest
  token (or what it held before, if none did); a create answered 201 left an
  order;
- no 4xx left a lasting change (the same rule, seen from the other side: only
  2xx answers explain the order's content), and nothing answered 5xx;
- the tokens each document accepted only grew: every fenced write either store
  accepted, in the order they came.

The answers are kept per schedule, so that a violation prints the schedule
that made it.
"""

from __future__ import annotations

import asyncio
import contextvars
import itertools
import random
import sys
from dataclasses import dataclass, field
from typing import Any, Awaitable, Callable, Iterable, Iterator, TypeVar

import pytest

from orders.errors import ERROR_TABLE
from orders.order import OrderRequest
from orders.repair import Repairer
from servicekit import write_outcomes
from servicekit.clients import unavailable
from servicekit.errors import ServiceError
from tests.stack import ITEM, USER, Stack

STEP_TIMEOUT = 10.0
BASE_US = 1_900_000_000_000_000  # later than any order's creation
KEY = "explorer"
DEPENDENCY = "dependency unavailable"
MISSING = "no-such-order"  # the id a flow uses when its order does not exist (yet)
REQUEST: OrderRequest = {"user_id": USER, "item_id": ITEM, "quantity": 2,
                         "value_cents": 1050}

T = TypeVar("T")
current: contextvars.ContextVar["Run | None"] = contextvars.ContextVar("flow", default=None)


@dataclass
class Answer:
    status: int                 # as the HTTP handler would answer; 0 for the repairer's
    token: int | None = None    # the token of a change answered 2xx
    content: tuple | None = None  # (quantity, value_cents) an update answered 200 with
    detail: str = ""


class Run:
    """One flow, run as a task of its own, stopped at its `stop_at`-th step."""

    def __init__(self, name: str, work: Callable[[], Awaitable[Answer]]) -> None:
        self.name = name
        self.work = work
        self.steps: list[str] = []
        self.stop_at: int | None = None
        self.stopped = asyncio.Event()
        self.resumed = asyncio.Event()
        self.task: asyncio.Task[Answer] | None = None

    async def step(self, name: str) -> None:
        self.steps.append(name)
        if self.stop_at is not None and len(self.steps) - 1 == self.stop_at:
            self.stopped.set()
            await self.resumed.wait()

    async def run_to(self, stop_at: int | None) -> bool:
        """Run (or resume) until the `stop_at`-th step; False if the flow ended first."""
        self.stop_at = stop_at
        self.stopped = asyncio.Event()
        if self.task is None:
            self.task = asyncio.get_running_loop().create_task(
                self.work(), context=_context_of(self))
        else:
            resumed, self.resumed = self.resumed, asyncio.Event()
            resumed.set()
        stopped = asyncio.ensure_future(self.stopped.wait())
        done, _ = await asyncio.wait({stopped, self.task}, timeout=STEP_TIMEOUT,
                                     return_when=asyncio.FIRST_COMPLETED)
        stopped.cancel()
        if not done:
            raise AssertionError(f"{self.name} neither stopped nor ended: {self.steps}")
        return self.stopped.is_set()

    async def finish(self) -> Answer:
        if self.task is None or not self.task.done():
            await self.run_to(None)
        assert self.task is not None
        return await asyncio.wait_for(self.task, STEP_TIMEOUT)

    async def abandon(self) -> None:
        """As a process killed where it stands."""
        if self.task is not None:
            self.task.cancel()
            await asyncio.gather(self.task, return_exceptions=True)


def _context_of(run: Run) -> contextvars.Context:
    context = contextvars.copy_context()
    context.run(current.set, run)
    return context


@dataclass
class Schedule:
    world: str
    flows: tuple[str, ...]
    stops: tuple[int | None, ...]   # where each flow stops, in the order they start
    resume: tuple[int, ...]         # the order the stopped flows are resumed in
    steps: dict[str, list[str]] = field(default_factory=dict)
    answers: dict[str, Answer] = field(default_factory=dict)

    def __str__(self) -> str:
        parts = []
        for index, name in enumerate(self.flows):
            stop = self.stops[index]
            label = f"{name}#{index}"
            at = ("end" if stop is None or stop >= len(self.steps.get(label, []))
                  else self.steps[label][stop])
            parts.append(f"{label} to {at if stop is None else f'step {stop} ({at})'}")
        order = " then ".join(f"{self.flows[i]}#{i}" for i in self.resume)
        answers = ", ".join(f"{label} {answer.status}{' ' + answer.detail if answer.detail else ''}"
                            for label, answer in self.answers.items())
        return (f"world {self.world}: {'; '.join(parts)}; resumed {order}; answers: {answers}; "
                f"steps: {self.steps}")


class Explorer:
    """Binds the flows to one stack's orders service (built in test mode)."""

    def __init__(self, stack: Stack, monkeypatch: pytest.MonkeyPatch) -> None:
        self.stack = stack
        self.service = stack.order_service
        self.db = stack.db
        self.schedules = 0
        self.inconclusive = 0
        self.next_us = BASE_US
        self.order_id = ""
        self.key = KEY
        self.accepted: dict[str, list[int]] = {}  # store -> the tokens it accepted, in turn
        self._install(monkeypatch)

    # -- the hooks ---------------------------------------------------------------------------

    def _install(self, monkeypatch: pytest.MonkeyPatch) -> None:
        faults = self.service.faults
        assert faults.actions == {}, "start the stack with test_mode=True and no faults"
        monkeypatch.setattr(faults, "point", self._point)
        invoices = self.service.invoices
        for method in ("create", "update_total", "delete"):
            monkeypatch.setattr(invoices, method, self._then_step(
                f"invoices.{method}", getattr(invoices, method)))
        observe = write_outcomes.observe

        async def observed(metrics: Any, store: str, token: int, write: Awaitable[T]) -> T:
            result = await observe(metrics, store, token, write)
            if result is not None and result is not False:
                self.accepted.setdefault(store, []).append(token)
            return result

        # Both stores' fenced writes go through it, the invoices' too (same process).
        monkeypatch.setattr(write_outcomes, "observe", observed)

    async def _point(self, name: str) -> None:
        run = current.get()
        if run is not None:
            await run.step(name)

    def _then_step(self, name: str, call: Callable[..., Awaitable[Any]]
                   ) -> Callable[..., Awaitable[Any]]:
        async def called(*args: Any, **kwargs: Any) -> Any:
            try:
                return await call(*args, **kwargs)
            finally:
                await self._point(name)
        return called

    async def _order(self) -> dict | None:
        if self.order_id:
            doc: dict | None = await self.db["orders"].find_one({"_id": self.order_id})
            return doc
        found: dict | None = await self.db["orders"].find_one({"idempotency_key": self.key})
        return found

    # -- the flows -----------------------------------------------------------------------------

    def flows(self) -> dict[str, Callable[[], Awaitable[Answer]]]:
        return {"update": self._update, "delete": self._delete, "create": self._create,
                "settle_inline": self._update, "settle_background": self._settle,
                "rollback": self._rollback}

    async def _order_id(self) -> str | None:
        order = await self._order()
        return None if order is None else str(order["_id"])

    async def _update(self) -> Answer:
        self.next_us += 1_000_000
        update_us, quantity = self.next_us, 3 + self.next_us // 1_000_000 % 50
        order_id = await self._order_id()
        return await answered(200, lambda: self.service.update(
            order_id or MISSING, update_us, quantity, None))

    async def _delete(self) -> Answer:
        order_id = await self._order_id()
        return await answered(204, lambda: self.service.delete(order_id or MISSING))

    async def _create(self) -> Answer:
        return await answered(201, lambda: self.service.create(REQUEST, self.key))

    async def _settle(self) -> Answer:
        order_id = await self._order_id()
        if order_id is None:
            return Answer(0, detail="nothing")
        return await repaired(self.service.settle_left_intent(order_id))

    async def _rollback(self) -> Answer:
        order = await self._order()
        if order is None or order["status"] != "pending":
            return Answer(0, detail="nothing")
        return await repaired(self.service.roll_back_create(order))

    async def repair(self) -> None:
        """The leases run out, every intent with them, and the repairer takes a pass."""
        await self.db["orders"].update_many({"intent": {"$exists": True}},
                                            {"$set": {"intent.expires_us": 0}})
        await self.expire_leases()
        result = await Repairer(self.service, interval_ms=100,
                                pending_grace_ms=-60_000).run_once()
        assert result.failed == 0 and result.busy == 0, result

    async def expire_leases(self) -> None:
        redis = self.stack.lock.redis
        keys = [key async for key in redis.scan_iter(
            f"{self.stack.settings.lock_prefix}:*:lock:*")]
        if keys:
            await redis.delete(*keys)

    # -- a schedule ------------------------------------------------------------------------------

    async def world(self, name: str) -> dict | None:
        """A fresh order (or none) in the state `name` says; the order as it starts."""
        self.key = f"{KEY}-{self.schedules}"
        self.order_id = ""
        self.accepted = {}
        if name in ("live", "intent"):
            created = await self.service.create(REQUEST, None)
            self.order_id = created["_id"]
            if name == "intent":
                await self._cut_off(Run("cut off", self._update), "before_order_commit")
        elif name == "cut_off_create":
            await self._cut_off(Run("cut off", self._create), "before_activate")
        return await self._order()

    async def _cut_off(self, run: Run, point: str) -> None:
        """`run` stopped at `point`, then gone, its lease expired."""
        for index in itertools.count():
            if not await run.run_to(index):
                raise AssertionError(f"{run.name} ended before {point}: {run.steps}")
            if run.steps[-1] == point:
                break
        await self.expire_leases()
        await run.abandon()

    async def run(self, schedule: Schedule) -> list[str]:
        """Run `schedule`; the rules it broke."""
        self.schedules += 1
        before = await self.world(schedule.world)
        flows = self.flows()
        runs = [Run(f"{name}#{index}", flows[name]) for index, name in enumerate(schedule.flows)]
        try:
            for index, (run, stop) in enumerate(zip(runs, schedule.stops)):
                if stop is None:
                    schedule.answers[run.name] = await run.finish()
                elif await run.run_to(stop) and index < len(runs) - 1:
                    # Frozen past its lease; the last flow of the schedule still holds its own.
                    await self.expire_leases()
            for index in schedule.resume:
                if runs[index].name not in schedule.answers:
                    schedule.answers[runs[index].name] = await runs[index].finish()
        finally:
            for run in runs:
                schedule.steps[run.name] = run.steps
                await run.abandon()
        await self.repair()
        return await self.check(before, schedule)

    # -- the rules -------------------------------------------------------------------------------

    async def check(self, before: dict | None, schedule: Schedule) -> list[str]:
        broken: list[str] = []
        order = await self._order()
        invoice = (await self.db["invoices"].find_one({"_id": order["invoice_id"]})
                   if order is not None else None)
        broken += agree(order, invoice)
        answers = list(schedule.answers.values())
        broken += [f"answered {a.status}: {a.detail}" for label, a in schedule.answers.items()
                   if a.status >= 500 and not (label.startswith("delete") and a.status == 503)]
        # A delete answered 503 will be completed (it was taken over, or invoices did
        # not confirm): it promises the delete, as a 204 does.
        deleted_2xx = any(label.startswith("delete#") and a.status in (204, 503)
                          for label, a in schedule.answers.items())
        created_2xx = any(a.status == 201 for a in answers)
        updates = sorted((a for a in answers if a.status == 200), key=lambda a: a.token or 0)
        if order is None or order["status"] == "pending":
            if created_2xx or (before is not None and before["status"] != "pending"):
                broken.append("an order answered as created or live before is gone")
            return broken
        if before is None or before["status"] == "pending":
            if not created_2xx:
                broken.append("no create answered 201, yet the order lives")
        if deleted_2xx and order["deleted_us"] is None:
            broken.append("a delete answered 204 (or 503: to be completed) was undone")
        if not deleted_2xx and order["deleted_us"] is not None:
            broken.append("the order is deleted, yet no delete answered 204 (or 503)")
        if order["deleted_us"] is None:
            expected = (updates[-1].content if updates else
                        None if before is None or before["status"] == "pending"
                        else (before["quantity"], before["value_cents"]))
            if expected is not None and (order["quantity"], order["value_cents"]) != expected:
                broken.append(f"the order holds {(order['quantity'], order['value_cents'])}, "
                              f"not {expected}, the newest change answered 2xx (or none)")
        for store, tokens in self.accepted.items():
            if tokens != sorted(tokens):
                broken.append(f"{store} accepted a token below one it accepted before: "
                              f"{tokens}")
        return broken


def agree(order: dict | None, invoice: dict | None) -> list[str]:
    if order is None:
        return ([] if invoice is None or invoice["status"] == "deleted"
                else ["the order is gone, its invoice lives"])
    broken = [f"left behind: {what}" for what in ("intent",) if what in order]
    if order["status"] == "pending":
        broken.append("left behind: a pending order")
    elif invoice is None:
        broken.append("the order has no invoice")
    elif (order["deleted_us"] is None) != (invoice["status"] != "deleted"):
        broken.append(f"order {order['status']}, invoice {invoice['status']}")
    elif order["deleted_us"] is None and order["total_cents"] != invoice["total_cents"]:
        broken.append(f"order total {order['total_cents']}, invoice total "
                      f"{invoice['total_cents']}")
    return broken


async def answered(ok: int, call: Callable[[], Awaitable[Any]]) -> Answer:
    """The flow's answer as the HTTP handler would give it (`ok` on success)."""
    try:
        doc = await call()
    except ServiceError as exc:
        status, code, _ = ERROR_TABLE[type(exc)]
        return Answer(status, detail=code)
    except Exception as exc:
        if unavailable(exc) is not None:  # the handler's 503: MongoDB or Redis too slow
            return Answer(503, detail=f"{DEPENDENCY}: {exc!r}")
        # What the handler would answer 500.
        return Answer(500, detail=repr(exc))
    if doc is None:
        return Answer(ok)
    return Answer(ok, token=doc["fence"], content=(doc["quantity"], doc["value_cents"]))


async def repaired(work: Awaitable[Any]) -> Answer:
    try:
        outcome = await work
    except Exception as exc:  # the repairer counts it failed and tries again next pass
        return Answer(0, detail=f"failed: {exc!r}")
    return Answer(0, detail=str(getattr(outcome, "value", outcome)))


# -- the enumeration ---------------------------------------------------------------------------

FLOWS = ("update", "delete", "create", "settle_inline", "settle_background", "rollback")
CREATES = {"create", "rollback"}


def worlds(flows: tuple[str, ...]) -> tuple[str, ...]:
    if CREATES & set(flows):
        return ("empty", "cut_off_create")
    if "settle_inline" in flows:
        return ("intent",)
    return ("live", "intent")


Violations = list[tuple[Schedule, list[str]]]


async def run_checked(explorer: Explorer, schedule: Schedule, violations: Violations) -> None:
    """Run `schedule`; once more if a server was too slow to answer in it (a 2-core
    machine under load), and if so again, it is counted inconclusive, not checked."""
    for attempt in (1, 2):
        if attempt == 2:
            schedule.steps, schedule.answers = {}, {}
        broken = await explorer.run(schedule)
        if not any(a.detail.startswith(DEPENDENCY) for a in schedule.answers.values()):
            break
    else:
        explorer.inconclusive += 1
        print(f"inconclusive (a server too slow): {schedule}", file=sys.__stderr__)
        return
    if broken:
        violations.append((schedule, broken))
        # At once, past pytest's capture: a long run shows what it found as it goes.
        print(f"violation: {'; '.join(broken)}\n  in {schedule}", file=sys.__stderr__)


async def steps_of(explorer: Explorer, world: str, flows: tuple[str, ...],
                   stops: tuple[int | None, ...], violations: Violations) -> int:
    """How many steps the last of `flows` takes to its end, the others stopped at
    `stops` (a schedule of its own, checked as the others)."""
    probe = Schedule(world, flows, stops + (None,), tuple(range(len(flows))))
    await run_checked(explorer, probe, violations)
    return len(probe.steps[f"{flows[-1]}#{len(flows) - 1}"])


def pairs(every_world: bool = True) -> Iterator[tuple[str, tuple[str, ...]]]:
    for first, second in itertools.product(FLOWS, repeat=2):
        for world in worlds((first, second))[:None if every_world else 1]:
            yield world, (first, second)


async def explore(explorer: Explorer, flows_in: Iterable[tuple[str, tuple[str, ...]]],
                  violations: Violations, sample: int | None = None) -> None:
    """For each (world, flows) of `flows_in`: the first flow stopped at each of its steps,
    the second run to its end, and to each of its steps, the two then resumed in both
    orders; with `sample`, only that many of those (step, order) for each step of the
    first, chosen at random (seeded: the same on every run). With three flows the
    third runs to its end after the two stopped, before they are resumed."""
    for world, flows in flows_in:
        for i in range(await steps_of(explorer, world, flows[:1], (), violations)):
            b_steps = await steps_of(explorer, world, flows[:2], (i,), violations)
            choices = [(j, resume) for j in range(b_steps) for resume in ((0, 1), (1, 0))]
            if sample is not None:
                choices = random.Random(f"{world} {flows} {i}").sample(
                    choices, min(sample, len(choices)))
            for j, resume in choices:
                stops = (i, j) + (None,) * (len(flows) - 2)
                await run_checked(explorer, Schedule(world, flows, stops, resume), violations)
