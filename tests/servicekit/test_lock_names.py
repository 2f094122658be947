"""The pair's lock names: one hash tag per pair (one slot for the acquire's script on a
Redis Cluster), and the pairs spread over a cluster's slots."""

from __future__ import annotations

import uuid

from redis.crc import key_slot

from fencing.keys import LeaseKeys, hash_tag
from orders.pair import resources
from servicekit.lock_names import invoice_lock


def test_an_order_and_its_invoice_share_a_tag_the_invoice_service_derives_too() -> None:
    order = {"_id": str(uuid.uuid4()), "invoice_id": str(uuid.uuid4())}
    order_name, invoice_name = resources(order)
    assert invoice_name == invoice_lock(order["invoice_id"])  # what invoices checks
    assert hash_tag(order_name) == hash_tag(invoice_name) == order["invoice_id"]
    keys = LeaseKeys.of("orders", (order_name, invoice_name), cluster=True)  # no ValueError
    assert len({key_slot(key.encode()) for key in keys.with_wake("lease")}) == 1


def test_pairs_spread_over_the_three_masters_of_a_cluster() -> None:
    third = 16384 // 3
    counts = [0, 0, 0]
    for _ in range(600):
        order = {"_id": str(uuid.uuid4()), "invoice_id": str(uuid.uuid4())}
        space = LeaseKeys.of("orders", resources(order), cluster=True).space
        counts[min(key_slot(space.seq.encode()) // third, 2)] += 1
    assert all(0.20 <= count / 600 <= 0.47 for count in counts), counts
