"""Every step of the flow ends at a fault point that `DLOCK_FAULTS` can arm, and every
point it can arm is a step of the flow."""

from __future__ import annotations

import ast
from pathlib import Path

import orders.service
from orders.faults import POINTS


def test_the_flows_steps_are_the_armable_fault_points() -> None:
    tree = ast.parse(Path(orders.service.__file__).read_text(encoding="utf-8"))
    steps = {node.args[0].value for node in ast.walk(tree)
             if isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute)
             and node.func.attr == "_step" and isinstance(node.args[0], ast.Constant)}
    assert steps == set(POINTS)
