"""No module imports itself back, however far round: not at the top, not inside a function,
not under TYPE_CHECKING (a cycle hidden there is still two modules that need each other)."""

from __future__ import annotations

import ast
import graphlib
from pathlib import Path

ROOT = Path(__file__).parents[2]
PACKAGES = ("benchmarks", "devstack", "examples", "fencing", "invoices", "orders", "servicekit")


def module_name(path: Path) -> str:
    parts = path.relative_to(ROOT).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def imports(path: Path, name: str, known: set[str]) -> set[str]:
    """The project's modules `path` imports: `from a import b` means the module a.b when
    there is one, else a (an import of a package's name runs only its __init__)."""
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    found = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = package.rsplit(".", node.level - 1)[0] if node.level > 1 else package
                base = f"{anchor}.{base}" if base else anchor
            found.update(f"{base}.{alias.name}" if f"{base}.{alias.name}" in known else base
                         for alias in node.names)
    return found & known - {name}


def import_graph() -> dict[str, set[str]]:
    paths = {module_name(path): path for package in PACKAGES
             for path in (ROOT / package).rglob("*.py")}
    known = set(paths)
    return {name: imports(path, name, known) for name, path in paths.items()}


def cycle(graph: dict[str, set[str]]) -> list[str]:
    """One cycle of the graph, or [] if it has none."""
    try:
        graphlib.TopologicalSorter(graph).prepare()
    except graphlib.CycleError as found:
        return list(found.args[1])
    return []


def test_no_package_has_an_import_cycle() -> None:
    assert cycle(import_graph()) == []


def test_the_check_sees_a_function_level_import_back() -> None:
    # The cycle the kit once had: common_routes imported docs_page inside the function,
    # and docs_page builds on handlers' JsonHandler.
    graph = import_graph()
    assert "devstack.injectors" in graph["devstack.chaos.faults"]  # from devstack import …
    assert "servicekit.handlers" in graph["servicekit.docs_page"]
    graph["servicekit.handlers"].add("servicekit.docs_page")
    assert set(cycle(graph)) == {"servicekit.handlers", "servicekit.docs_page"}
