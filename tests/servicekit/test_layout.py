"""The packages import one way: the kit and the lock know no service, the services know
not each other, and no tool imports the tests."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).parents[2]

# package -> the top-level packages it must never import
FORBIDDEN = {
    "fencing": {"servicekit", "orders", "invoices", "devstack", "tests"},
    "servicekit": {"orders", "invoices", "devstack", "tests"},
    "orders": {"invoices", "devstack", "tests"},
    "invoices": {"orders", "devstack", "tests"},
    "devstack": {"tests"},
    "benchmarks": {"tests"},
}


def imported_packages(path: Path) -> set[str]:
    found = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            found.update(alias.name.split(".")[0] for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and not node.level:
            found.add(node.module.split(".")[0])
    return found


@pytest.mark.parametrize("package", sorted(FORBIDDEN))
def test_a_package_imports_only_what_it_may(package: str) -> None:
    wrong = {f"{path.relative_to(ROOT)} imports {name}"
             for path in (ROOT / package).rglob("*.py")
             for name in imported_packages(path) & FORBIDDEN[package]}
    assert not wrong, sorted(wrong)
