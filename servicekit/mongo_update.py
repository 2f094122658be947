"""One conditional `update_one`, optionally followed by reading the document back."""

from __future__ import annotations

from typing import Any


async def update_then_read(collection: Any, query: dict, update_spec: dict) -> dict | None:
    """One conditional `update_one` (a token check and the write in one atomic
    operation, see `fencing.mongo.fence`), then the document read back by `_id`
    if it matched; None if not.

    Not `find_one_and_update`: SecantusDB, the embedded MongoDB-wire server, scans
    the whole collection for findAndModify (2 ms at 300 documents, 14 ms at 3,000)
    while `update_one` and `find_one` by `_id` stay under 1 ms. The read-back runs
    under the writer's lease, so it sees the write it follows.
    """
    if not await update(collection, query, update_spec):
        return None
    doc: dict | None = await collection.find_one({"_id": query["_id"]})
    return doc


async def update(collection: Any, query: dict, update_spec: dict) -> bool:
    """One conditional `update_one`; True if a document matched (and was written)."""
    result = await collection.update_one(query, update_spec)
    return bool(result.matched_count)
