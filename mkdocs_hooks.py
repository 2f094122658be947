"""MkDocs hooks of the documentation site (mkdocs.yml): what the build brings from outside
docs/, so that the site needs no network and tolerates pages another change has not written.

- mermaid.min.js comes from the npm package (package.json), not from a CDN: Material loads
  mermaid from the network only when no global `mermaid` exists, and this one is loaded
  before any diagram is drawn.
- A page that starts with `<!-- include-if-present: PATH -->` shows the file PATH (from the
  repository's root) instead of its own text, once PATH exists.
- A page that starts with `<!-- api-if-present: MODULE -->` shows MODULE's reference
  (mkdocstrings) instead of its own text, once the module's source exists.
- The docstrings mark their examples as reST does ("text::" before an indented block),
  which Markdown draws as a stray "::": the API pages drop it.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

from mkdocs.exceptions import PluginError
from mkdocs.structure.files import File, Files
from mkdocs.structure.pages import Page

ROOT = Path(__file__).parent
MERMAID = ROOT / "node_modules" / "mermaid" / "dist" / "mermaid.min.js"
MERMAID_URL = "assets/javascripts/mermaid.min.js"  # mkdocs.yml's extra_javascript
LITERAL_MARK = re.compile(r"(?:<p>::</p>\n?|(?<=\S):(?=:</p>))")
MARKER = re.compile(r"\A<!-- (include|api)-if-present: (\S+) -->\n")


def on_files(files: Files, config: Any) -> Files:
    if not MERMAID.is_file():
        raise PluginError(f"{MERMAID.relative_to(ROOT)} is missing: run `npm ci` (make docs does)")
    files.append(File.generated(config, MERMAID_URL, abs_src_path=str(MERMAID)))
    return files


def module_source(module: str) -> Path | None:
    path = ROOT.joinpath(*module.split("."))  # fencing/ is the package's folder itself
    for candidate in (path.with_suffix(".py"), path / "__init__.py"):
        if candidate.is_file():
            return candidate
    return None


def on_page_markdown(markdown: str, page: Page, config: Any, files: Files) -> str:
    found = MARKER.match(markdown)
    if not found:
        return markdown
    kind, target = found.groups()
    if kind == "include":
        source = ROOT / target
        return source.read_text(encoding="utf-8") if source.is_file() else markdown[found.end():]
    if module_source(target) is None:
        return markdown[found.end():]
    return f"# `{target}`\n\n::: {target}\n"


def on_page_content(html: str, page: Page, config: Any, files: Files) -> str:
    if not page.file.src_uri.startswith("library/reference/"):
        return html
    return LITERAL_MARK.sub("", html)
