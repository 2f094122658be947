"""The interleaving explorer (`tests.orders.explorer`) over the orders service's flows.

In `make test` (about two minutes on 2 busy cores): every ordered pair of flows
on one order, in one starting world each, the first stopped at each of its
steps with its lease expired, the second run to its end and, for each step of
the first, to one of its own steps picked at random (seeded), resumed in one
order; a few triples alike. `make explore-services` (EXPLORE=all) runs every
starting world, the second flow to every one of its steps, both resume orders,
and more triples.
"""

from __future__ import annotations

import os
from typing import Awaitable, Callable

import pytest

from tests.orders.explorer import Explorer, Violations, explore, pairs
from tests.stack import Stack

FULL = os.environ.get("EXPLORE") == "all"
TRIPLES = [("live", ("update", "update", "update")),
           ("live", ("update", "delete", "settle_background")),
           ("intent", ("settle_inline", "settle_background", "update")),
           ("cut_off_create", ("create", "rollback", "create"))]
MORE_TRIPLES = [("live", ("delete", "update", "settle_background")),
                ("intent", ("settle_background", "settle_background", "delete")),
                ("empty", ("create", "create", "rollback")),
                ("cut_off_create", ("rollback", "create", "update"))]


@pytest.mark.timeout(7200 if FULL else 600)
@pytest.mark.gen_test(timeout=7200 if FULL else 600)
async def test_no_interleaving_of_two_flows_breaks_a_rule(
        make_stack: Callable[..., Awaitable[Stack]], monkeypatch: pytest.MonkeyPatch,
        capsys: pytest.CaptureFixture[str]) -> None:
    stack = await make_stack(test_mode=True, lock_wait_ms=0)
    explorer = Explorer(stack, monkeypatch)
    violations: Violations = []
    await explore(explorer, pairs(every_world=FULL), violations, sample=None if FULL else 2)
    await explore(explorer, TRIPLES + (MORE_TRIPLES if FULL else []), violations,
                  sample=None if FULL else 1)
    with capsys.disabled():
        print(f"\ninterleaving explorer: {explorer.schedules} schedules, "
              f"{len(violations)} violations, {explorer.inconclusive} inconclusive")
    assert not violations, f"{len(violations)} schedules broke a rule; the first: " \
        f"{violations[0][1]} in {violations[0][0]}"
