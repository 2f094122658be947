"""The intent: what an update or delete is about to do, recorded on the order before the
invoice is called, and the filters that guard it.

Intent before effect: a process can die between the invoice write and the order's
commit, or lose the answer of an invoice call that was applied. The intent says
what was under way; whoever next holds the pair's lease settles it with a token
above it (`OrderService.settle_left_intent`, or inline by the next request): an
update is rolled back, a delete forward. The commit removes it in its own write.

Stored as the order's `intent` field::

    {op: "update"|"delete", token, <the changes: orders.changes.UpdateChanges or
     DeleteChanges>, at_us, expires_us}
"""

from __future__ import annotations

from typing import Any, Literal, Mapping, NotRequired, TypedDict

from fencing import Lease
from orders.changes import Changes
from servicekit import validate

Op = Literal["update", "delete"]

# What an update or delete plans from (its checks and its changes) of the order it read.
PLANNED_FROM = ("quantity", "value_cents", "updated_us", "deleted_us")


class Intent(TypedDict):
    op: Op
    token: int
    at_us: int
    expires_us: int   # the lease's end: from then on the repairer settles it
    status: str
    quantity: NotRequired[int]
    value_cents: NotRequired[int]
    total_cents: NotRequired[int]
    updated_us: NotRequired[int]
    deleted_us: NotRequired[int]


def new_intent(op: Op, changes: Changes, lease: Lease) -> Intent:
    now = validate.now_micros()
    return {"op": op, **changes, "token": lease.token,
            "at_us": now, "expires_us": now + int(lease.remaining() * 1_000_000)}


def unchanged(seen: Mapping[str, Any]) -> dict[str, Any]:
    """The filter under which a plan made from `seen` holds for the order as it is:
    what it was planned from is as read, and no intent is under way.

    Not the fence itself: a second condition on it makes `fencing.mongo.fence` join
    them with $and, and SecantusDB runs a filter with a top-level operator as a scan
    of the whole collection (with `_id` among plain fields it looks the document up
    by its id)."""
    return {**{name: seen[name] for name in PLANNED_FROM},
            "intent": {"$exists": False}}


def expired(now_us: int) -> dict[str, Any]:
    """What the repairer settles: intents whose lease has run out, or that their holder
    handed over (`GIVE_UP`)."""
    return {"intent.expires_us": {"$lt": now_us}}


# Hands an intent to the repairer at once: it is expired from now on.
GIVE_UP = {"$set": {"intent.expires_us": 0}}
