"""The token check for MongoDB, built into the write it guards.

::

    from fencing.mongo import fence

    query, update = fence({"_id": iid}, {"$set": {"total_cents": 500}}, lease.token)
    result = await invoices.update_one(query, update)     # or a sync PyMongo collection
    applied = result.matched_count == 1

The document keeps the highest token it accepted in `field`. The returned
filter matches only while that is at most `token`, and the returned update
raises it to `token`, so the check and the write are one atomic operation:
no read-then-write window. A holder whose lease ran out while it was paused
wakes up with a lower token than its successor's and matches nothing::

    A: token 33 .......... paused past its lease ............ update(33) -> matched 0
    B:            token 34 -> update(34) -> matched 1 (fence 34)

A document without `field` (or with null) counts as 0, so the first fenced write
to an existing document is accepted. An equal token is accepted: the same holder
may retry its write. Nothing here talks to MongoDB, so it works with any driver,
sync or async, and with `update_one`, `update_many` and `find_one_and_update`.
"""

from __future__ import annotations

from typing import Any, Mapping

__all__ = ["fence"]


def fence(filter: Mapping[str, Any], update: Mapping[str, Any], token: int,
          field: str = "fence") -> tuple[dict[str, Any], dict[str, Any]]:
    """`(query, update)`: the caller's filter with "`field` is at most `token`" added,
    and the caller's update operators with `field` set to `token`.

    Raises TypeError if `token` is not an int, ValueError if `update` is a
    replacement document (not update operators) or already writes `field`.
    """
    if not isinstance(token, int) or isinstance(token, bool):
        raise TypeError(f"a fencing token is an int, got {token!r}")
    if any(not key.startswith("$") for key in update):
        raise ValueError("fence() takes update operators ({'$set': ...}), "
                         "not a replacement document")
    if any(field in spec for spec in update.values() if isinstance(spec, Mapping)):
        raise ValueError(f"the update writes {field!r} itself: fence() sets it to the token")

    # "Not greater than" rather than $lte: it also matches a missing or null field.
    at_most_token = {"$not": {"$gt": token}}
    query = dict(filter)
    if field in query:
        # The caller has a condition on the field already: keep both.
        query["$and"] = [*query.get("$and", []), {field: at_most_token}]
    else:
        query[field] = at_most_token
    fenced_update = {operator: dict(spec) for operator, spec in update.items()}
    fenced_update["$set"] = {**fenced_update.get("$set", {}), field: token}
    return query, fenced_update
