"""The interleaving explorer (`tests.orders.explorer`) over the orders service's flows.

In `make test`: every ordered pair of flows on one order, the first stopped at
each of its steps with its lease expired, the second run to its end and to
every other one of its steps, then both resumed in both orders; a few triples.
About 90 s on 2 busy cores. `make explore-services` (EXPLORE=all) runs the
second flow to every one of its steps and more triples.
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


@pytest.mark.gen_test(timeout=1800 if FULL else 240)
async def test_no_interleaving_of_two_flows_breaks_a_rule(
        make_stack: Callable[..., Awaitable[Stack]], capsys: pytest.CaptureFixture[str]) -> None:
    stack = await make_stack(test_mode=True, lock_wait_ms=0)
    explorer = Explorer(stack)
    violations: Violations = []
    await explore(explorer, pairs(), violations, b_every=1 if FULL else 2)
    await explore(explorer, TRIPLES + (MORE_TRIPLES if FULL else []), violations,
                  b_every=1 if FULL else 3)
    with capsys.disabled():
        print(f"\ninterleaving explorer: {explorer.schedules} schedules, "
              f"{len(violations)} violations")
        for schedule, broken in violations[:10]:
            print(f"  {'; '.join(broken)}\n    in {schedule}")
    assert not violations, f"{len(violations)} schedules broke a rule; the first: " \
        f"{violations[0][1]} in {violations[0][0]}"
