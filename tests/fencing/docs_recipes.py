"""The code blocks of the docs pages, for tests that run them as the page shows them: the
page cannot drift from what is tested."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

DOCS = Path(__file__).resolve().parents[2] / "docs"
CODE_BLOCK = re.compile(r"```python\n(.*?)```", re.DOTALL)


def recipe(page: str, name: str, replace: tuple[str, str] | None = None,
           namespace: dict[str, Any] | None = None) -> Any:
    """The function `name` as the one code block of `page` (under docs/) that defines it
    makes it, that block run alone, in `namespace` if given (what the page leaves to the
    reader, such as a table), with `replace` applied to its source first."""
    path = DOCS / page
    blocks = [block for block in CODE_BLOCK.findall(path.read_text())
              if re.search(rf"^(async )?def {name}\(", block, re.MULTILINE)]
    assert len(blocks) == 1, f"one code block of {page} defines {name}()"
    source = blocks[0] if replace is None else blocks[0].replace(*replace)
    scope = dict(namespace or {})
    exec(compile(source, str(path), "exec"), scope)
    return scope[name]
