"""The documentation site (mkdocs.yml): it builds with --strict, so a broken link, a missing
page or an unresolved reference fails, and headless Chromium draws every mermaid diagram as
an SVG from the site's own copy of mermaid, with no request leaving the machine.

Budget: about 10 s to build, about 15 s in the browser."""

from __future__ import annotations

import asyncio
import os
import re
import socketserver
import subprocess
import sys
import threading
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any, Iterator

import pytest
import yaml

import mkdocs_hooks
from tests.browser import CHROMIUM
from tests.devtools import Browser

ROOT = Path(__file__).parent.parent
MERMAID = ROOT / "node_modules" / "mermaid" / "dist" / "mermaid.min.js"
MERMAID_URL = "/assets/javascripts/mermaid.min.js"
CHROMIUM_ITSELF = {"accounts.google.com:443", "content-autofill.googleapis.com:443"}


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory) -> Path:
    if not MERMAID.is_file():
        pytest.skip("node_modules/mermaid is missing: `npm ci` installs it (make test runs it)")
    out = tmp_path_factory.mktemp("site")
    build = subprocess.run(
        [sys.executable, "-m", "mkdocs", "build", "--strict", "--site-dir", str(out)],
        cwd=ROOT, capture_output=True, text=True, timeout=120, check=False,
        env={**os.environ, "NO_MKDOCS_2_WARNING": "1"})
    assert build.returncode == 0, build.stderr[-5000:]
    assert "WARNING" not in build.stderr, build.stderr[-5000:]
    return out


def test_a_broken_link_or_reference_fails_the_build(tmp_path: Path) -> None:
    # The site's own configuration, on one page that links nowhere.
    (tmp_path / "docs").mkdir()
    (tmp_path / "docs" / "index.md").write_text(
        "# Broken\n\n[a page](nowhere.md), [a lock][fencing.Nowhere]\n")
    (tmp_path / "mkdocs.yml").write_text(yaml.safe_dump({
        "INHERIT": str(ROOT / "mkdocs.yml"), "docs_dir": str(tmp_path / "docs"),
        "hooks": [str(ROOT / "mkdocs_hooks.py")], "watch": [], "nav": ["index.md"]}))
    build = subprocess.run(
        [sys.executable, "-m", "mkdocs", "build", "--strict", "-f", str(tmp_path / "mkdocs.yml"),
         "--site-dir", str(tmp_path / "site")], cwd=ROOT, capture_output=True, text=True,
        timeout=120, check=False, env={**os.environ, "NO_MKDOCS_2_WARNING": "1"})
    assert build.returncode != 0
    assert "'nowhere.md'" in build.stderr and "fencing.Nowhere" in build.stderr, build.stderr


def nav_pages(nav: list[Any]) -> Iterator[str]:
    for item in nav:
        value = next(iter(item.values())) if isinstance(item, dict) else item
        if isinstance(value, list):
            yield from nav_pages(value)
        else:
            yield value


def test_every_page_in_the_nav_is_built(site: Path) -> None:
    config = yaml.load((ROOT / "mkdocs.yml").read_text(), Loader=yaml.Loader)
    pages = list(nav_pages(config["nav"]))
    assert len(pages) > 30
    for page in pages:
        assert (site / page.replace(".md", ".html")).is_file(), page
    assert list(Path(ROOT / "docs").rglob("*.md")) and all(
        str(path.relative_to(ROOT / "docs")) in pages for path in (ROOT / "docs").rglob("*.md"))


def test_the_api_reference_is_read_from_the_docstrings(site: Path) -> None:
    reference = site / "library" / "reference"
    for page, names in {"index": ["fencing.FencedLock.acquire", "fencing.FencedLock.hold"],
                        "sync": ["fencing.sync.FencedLock.acquire"],
                        "lease": ["fencing.lease.Lease.ensure_held"],
                        "errors": ["fencing.errors.LockBusy", "fencing.errors.LeaseLost"],
                        "mongo": ["fencing.mongo.fence"], "sql": ["fencing.sql.fence"]}.items():
        html = (reference / f"{page}.html").read_text()
        for name in names:
            assert f'id="{name}"' in html, (page, name)
        assert "<p>::</p>" not in html, page  # reST's literal-block mark, dropped


def test_the_readme_and_the_site_share_the_intro_and_the_tour(site: Path) -> None:
    home = (site / "index.html").read_text()
    assert "fencing token" in home and "--8&lt;--" not in home
    tour = (site / "services" / "api.html").read_text()
    assert "python -u -m fencing" in tour and "fencing_token_required" in tour


def test_the_readme_is_a_front_page_whose_links_lead_somewhere() -> None:
    readme = (ROOT / "README.md").read_text()
    assert len(readme.splitlines()) <= 420
    targets = re.findall(r"\]\(((?!https?:|#)[^)#]+)", readme)
    assert "docs/services/running.md" in targets and "docs/library/leases.md" in targets
    for target in targets:
        assert (ROOT / target).exists(), target


@pytest.mark.parametrize("page, shown", [
    ("<!-- include-if-present: SECURITY.md -->\n# Not yet\n", "# Security"),
    ("<!-- include-if-present: NOWHERE.md -->\n# Not yet\n", "# Not yet\n"),
    ("<!-- api-if-present: fencing.mongo -->\n# Not yet\n",
     "# `fencing.mongo`\n\n::: fencing.mongo\n"),
    ("<!-- api-if-present: fencing.nowhere -->\n# Not yet\n", "# Not yet\n"),
    ("# A page\n<!-- api-if-present: fencing.mongo -->\n", "# A page\n<!-- api-if"),
])
def test_a_page_shows_a_file_or_a_reference_once_it_exists(page: str, shown: str) -> None:
    markdown = mkdocs_hooks.on_page_markdown(page, None, None, None)  # type: ignore[arg-type]
    assert markdown.startswith(shown)
    assert "if-present" not in markdown or page.startswith("# A page")


def test_no_page_loads_anything_from_elsewhere(site: Path) -> None:
    for page in site.rglob("*.html"):
        html = page.read_text()
        assert not re.search(r"""<(script|link|img)[^>]+(src|href)=["']?(https?:)?//""",
                             html), page


class Recorder(socketserver.ThreadingTCPServer):
    """Stands where the network would be (Chromium's proxy): records what was asked of it,
    and answers nothing."""

    daemon_threads = True
    allow_reuse_address = True

    def __init__(self) -> None:
        self.asked: list[str] = []
        super().__init__(("127.0.0.1", 0), RecorderHandler)


class RecorderHandler(socketserver.StreamRequestHandler):
    def handle(self) -> None:
        assert isinstance(self.server, Recorder)
        self.server.asked.append(self.rfile.readline(2000).decode(errors="replace").strip())


class SiteServer(ThreadingHTTPServer):
    """The built site on a loopback port; `hidden` paths answer 404."""

    daemon_threads = True

    def __init__(self, root: Path) -> None:
        self.root = root
        self.hidden: set[str] = set()
        self.served: list[str] = []
        super().__init__(("127.0.0.1", 0), SiteHandler)


class SiteHandler(SimpleHTTPRequestHandler):
    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, directory=str(self.server_root(args[2])), **kwargs)

    @staticmethod
    def server_root(server: Any) -> Path:
        return Path(server.root)

    def do_GET(self) -> None:
        assert isinstance(self.server, SiteServer)
        self.server.served.append(self.path)
        if self.path in self.server.hidden:
            self.send_error(404)
            return
        super().do_GET()

    def log_message(self, format: str, *args: Any) -> None:
        pass


@pytest.fixture
def servers(site: Path) -> Iterator[tuple[SiteServer, Recorder]]:
    web, recorder = SiteServer(site), Recorder()
    threads = [threading.Thread(target=s.serve_forever, daemon=True) for s in (web, recorder)]
    for thread in threads:
        thread.start()
    try:
        yield web, recorder
    finally:
        for server in (web, recorder):
            server.shutdown()
            server.server_close()


def diagram_pages(site: Path) -> dict[str, int]:
    """Each page with mermaid diagrams, and how many it has."""
    pages = {}
    for page in sorted(site.rglob("*.html")):
        count = len(re.findall(r'<pre class="mermaid">', page.read_text()))
        if count:
            pages[str(page.relative_to(site))] = count
    return pages


@pytest.mark.slow
@pytest.mark.skipif(not Path(CHROMIUM).exists(), reason="chromium is not installed")
def test_every_diagram_draws_as_an_svg_with_no_network(
        site: Path, servers: tuple[SiteServer, Recorder]) -> None:
    web, recorder = servers
    base = f"http://127.0.0.1:{web.server_address[1]}/"
    pages = diagram_pages(site)
    assert "index.html" in pages and "services/deployment.html" in pages, pages

    async def check() -> tuple[dict[str, Any], dict[str, dict[str, int]], list[str]]:
        async with Browser(proxy=f"127.0.0.1:{recorder.server_address[1]}") as browser:
            # The unsafe variant first, before anything is cached: without the site's own
            # mermaid, Material fetches it from a CDN, and the recorder sees that.
            web.hidden = {MERMAID_URL}
            control = await browser.diagrams(base + "index.html", wait_for_svgs=0)
            for _ in range(100):  # a loaded machine may take a while to get there
                if any("unpkg.com" in line for line in recorder.asked):
                    break
                await asyncio.sleep(0.1)
            control["asked"], control["requested"] = list(recorder.asked), browser.requested
            recorder.asked.clear()
            browser.requested = []
            web.hidden = set()
            drawn = {page: await browser.diagrams(base + page, wait_for_svgs=count)
                     for page, count in pages.items()}
            await browser.diagrams(base + "library/reference/index.html", wait_for_svgs=0)
            return control, drawn, browser.requested

    control, drawn, requested = asyncio.run(asyncio.wait_for(check(), timeout=90))
    assert control["svgs"] == 0 and control["sources"] == 1, control
    assert any("unpkg.com:443" in line for line in control["asked"]), control
    assert any(url.startswith("https://unpkg.com/") for url in control["requested"]), control
    for page, count in pages.items():
        assert drawn[page] == {"sources": 0, "hosts": count, "svgs": count}, (page, drawn[page])
    # Chromium itself, not the page, sometimes asks Google's sign-in and autofill servers
    # whatever the flags say; anything else the proxy saw came from the site.
    asked = [line for line in recorder.asked if line.split()[1] not in CHROMIUM_ITSELF]
    assert asked == [], sorted(set(recorder.asked))
    assert MERMAID_URL in web.served
    elsewhere = [url for url in requested
                 if not url.startswith((base, "data:", "blob:", "about:"))]
    assert elsewhere == []
