"""`fencing.mongo.fence`: the filter and update it builds, run on SecantusDB (a
MongoDB-wire server) with PyMongo's sync client and with its asyncio client.

The race ends with a paused holder's late write: the unfenced update lets it
overwrite the newest value (every run), the fenced one refuses it and every
other write that came after a higher token's.
"""

from __future__ import annotations

import asyncio
import random
from concurrent.futures import ThreadPoolExecutor
from typing import Any, Iterator

import pytest
from pymongo import AsyncMongoClient, MongoClient

from fencing.mongo import fence

WRITERS = 8
WRITES = 48


class Invoices:
    """One collection through either driver, called the same blocking way by the tests."""

    def __init__(self, url: str, database: str, driver: str) -> None:
        self.driver = driver
        self.runner = asyncio.Runner() if driver == "async" else None
        client_class: Any = AsyncMongoClient if driver == "async" else MongoClient
        self.client = client_class(url, serverSelectionTimeoutMS=5_000, timeoutMS=10_000)
        self.collection = self.client[database]["invoices"]

    def _run(self, call: Any) -> Any:
        return self.runner.run(call) if self.runner is not None else call

    def insert(self, doc: dict) -> None:
        self._run(self.collection.insert_one(doc))

    def get(self, doc_id: str = "inv-1") -> dict:
        doc: dict = self._run(self.collection.find_one({"_id": doc_id}))
        return doc

    def update(self, query: dict, update: dict) -> int:
        return int(self._run(self.collection.update_one(query, update)).matched_count)

    def updates_at_once(self, writes: list[tuple[dict, dict]]) -> list[int]:
        """Every write in flight together: threads on the sync client, tasks on the async one."""
        if self.runner is not None:
            async def all_at_once() -> list[int]:
                results = await asyncio.gather(*(self.collection.update_one(query, update)
                                                 for query, update in writes))
                return [int(result.matched_count) for result in results]
            return list(self.runner.run(all_at_once()))
        with ThreadPoolExecutor(WRITERS) as pool:
            return list(pool.map(lambda write: self.update(*write), writes))

    def close(self) -> None:
        self._run(self.client.close())
        if self.runner is not None:
            self.runner.close()


@pytest.fixture(params=["sync", "async"])
def invoices(request: pytest.FixtureRequest, mongo_url: str,
             unique_name: str) -> Iterator[Invoices]:
    collection = Invoices(mongo_url, unique_name, request.param)
    yield collection
    collection.close()


def write(invoices: Invoices, token: int, total_cents: int, doc_id: str = "inv-1",
          **conditions: Any) -> int:
    return invoices.update(*fence({"_id": doc_id, **conditions},
                                  {"$set": {"total_cents": total_cents}}, token))


def test_the_filter_and_update_carry_the_token() -> None:
    query, update = fence({"_id": "inv-1"}, {"$set": {"total_cents": 5}}, 7)
    assert query == {"_id": "inv-1", "fence": {"$not": {"$gt": 7}}}
    assert update == {"$set": {"total_cents": 5, "fence": 7}}


def test_the_callers_filter_and_update_are_not_changed() -> None:
    filter_, update = {"_id": "inv-1"}, {"$set": {"total_cents": 5}}
    fence(filter_, update, 7, field="epoch")
    assert (filter_, update) == ({"_id": "inv-1"}, {"$set": {"total_cents": 5}})


def test_a_document_without_the_field_or_with_null_counts_as_zero(invoices: Invoices) -> None:
    invoices.insert({"_id": "inv-1", "total_cents": 0})
    invoices.insert({"_id": "inv-2", "total_cents": 0, "fence": None})
    assert write(invoices, 1, 100) == 1
    assert write(invoices, 1, 100, "inv-2") == 1
    assert {k: invoices.get()[k] for k in ("total_cents", "fence")} == \
        {"total_cents": 100, "fence": 1}
    assert invoices.get("inv-2")["fence"] == 1


def test_a_lower_token_is_refused_and_an_equal_one_accepted(invoices: Invoices) -> None:
    invoices.insert({"_id": "inv-1", "total_cents": 0, "fence": 0})
    assert write(invoices, 5, 500) == 1
    assert write(invoices, 4, 400) == 0
    assert (invoices.get()["total_cents"], invoices.get()["fence"]) == (500, 5)
    assert write(invoices, 5, 550) == 1        # the same holder retrying
    assert (invoices.get()["total_cents"], invoices.get()["fence"]) == (550, 5)


def test_the_callers_own_conditions_are_kept(invoices: Invoices) -> None:
    invoices.insert({"_id": "inv-1", "total_cents": 0, "fence": 0, "deleted_us": 17})
    assert write(invoices, 3, 300, deleted_us=None) == 0
    # A condition of the caller's on the field itself is kept beside the token's.
    query, update = fence({"_id": "inv-1", "fence": {"$gte": 1}}, {"$set": {"x": 1}}, 3)
    assert invoices.update(query, update) == 0
    assert invoices.get()["fence"] == 0


def test_the_callers_update_operators_are_kept(invoices: Invoices) -> None:
    invoices.insert({"_id": "inv-1", "total_cents": 0, "fence": 0, "intent": {"op": "update"},
                     "writes": 0})
    query, update = fence({"_id": "inv-1"}, {"$set": {"total_cents": 9}, "$unset": {"intent": ""},
                                             "$inc": {"writes": 1}}, 2)
    assert invoices.update(query, update) == 1
    doc = invoices.get()
    assert (doc["total_cents"], doc["writes"], doc["fence"], "intent" in doc) == (9, 1, 2, False)


def test_an_update_without_operators_only_raises_the_fence(invoices: Invoices) -> None:
    invoices.insert({"_id": "inv-1", "total_cents": 4, "fence": 1})
    assert invoices.update(*fence({"_id": "inv-1"}, {}, 6)) == 1
    assert (invoices.get()["total_cents"], invoices.get()["fence"]) == (4, 6)


@pytest.mark.parametrize("update, token, why", [
    ({"total_cents": 1}, 7, "not a replacement document"),
    ({"$set": {"fence": 3}}, 7, "sets it to the token"),
    ({"$inc": {"fence": 1}}, 7, "sets it to the token"),
    ({"$set": {"total_cents": 1}}, "7", "an int"),
    ({"$set": {"total_cents": 1}}, 7.0, "an int"),
])
def test_bad_arguments_are_refused(update: dict, token: Any, why: str) -> None:
    with pytest.raises((TypeError, ValueError), match=why):
        fence({"_id": "inv-1"}, update, token)


def test_concurrent_writers_leave_the_highest_tokens_value(invoices: Invoices) -> None:
    for fenced in (False, True):
        doc_id = "fenced" if fenced else "naive"
        invoices.insert({"_id": doc_id, "total_cents": 0, "fence": 0, "history": []})
        tokens = random.sample(range(1, WRITES + 1), WRITES) + [0]   # 0: a paused holder, last

        def build(token: int) -> tuple[dict, dict]:
            update = {"$set": {"total_cents": token * 100}, "$push": {"history": token}}
            return fence({"_id": doc_id}, update, token) if fenced else ({"_id": doc_id}, update)

        matched = invoices.updates_at_once([build(token) for token in tokens[:-1]])
        matched.append(invoices.update(*build(tokens[-1])))
        doc = invoices.get(doc_id)
        assert len(doc["history"]) == sum(matched)     # matched_count 1 exactly when written
        if not fenced:
            assert doc["total_cents"] == 0, "unfenced, the late token 0 wins"
            continue
        assert doc["history"] == sorted(doc["history"]), \
            "an accepted write had a lower token than one accepted before it"
        assert (doc["total_cents"], doc["fence"]) == (WRITES * 100, WRITES)
        refused = [token for token, hit in zip(tokens, matched) if not hit]
        assert 0 in refused and all(token < WRITES for token in refused)
