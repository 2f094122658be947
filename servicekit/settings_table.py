"""The settings as tables, made from their declaration: plain text for `--help`, Markdown
for docs/services/configuration.md."""

from __future__ import annotations

import textwrap

from servicekit.settings import Declared, declared


def own(kind: type, base: type | None = None) -> list[Declared]:
    """What `kind` declares beyond `base` (all it reads, without one)."""
    inherited = {item.variable for item in declared(base)} if base else set()
    return [item for item in declared(kind) if item.variable not in inherited]


def markdown(rows: list[Declared]) -> str:
    lines = ["| variable | default | meaning |", "|---|---|---|"]
    lines += [f"| `{item.variable}` | {item.default} | {item.meaning} |" for item in rows]
    return "\n".join(lines) + "\n"


def text(rows: list[Declared]) -> str:
    """Three columns, the meaning wrapped to fit 94 characters a line."""
    name_width = max(len(item.variable) for item in rows) + 2
    default_width = max(len(item.default) for item in rows if len(item.default) <= 28) + 2
    lines = [f"{'variable':<{name_width}}{'default':<{default_width}}meaning"]
    for item in rows:
        meaning = textwrap.wrap(item.meaning, 94 - name_width - default_width)
        if len(item.default) >= default_width:  # the meaning starts on the next line
            lines.append(f"{item.variable:<{name_width}}{item.default}")
            lines += [" " * (name_width + default_width) + line for line in meaning]
            continue
        lines.append(f"{item.variable:<{name_width}}{item.default:<{default_width}}"
                     f"{meaning[0]}")
        lines += [" " * (name_width + default_width) + line for line in meaning[1:]]
    return "\n".join(lines) + "\n"
