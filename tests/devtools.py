"""Headless Chromium driven over the DevTools protocol (Tornado's websocket client): pages
loaded one after another in one browser, every request they make recorded, and what they
drew read back, shadow roots included."""

from __future__ import annotations

import asyncio
import json
import shutil
import subprocess
import tempfile
import time
import urllib.request
from pathlib import Path
from types import TracebackType
from typing import Any

from tornado.websocket import WebSocketClientConnection, websocket_connect

from tests.browser import CHROMIUM

# Material draws each diagram into a closed shadow root; opened, the test can read the SVG.
OPEN_SHADOW_ROOTS = """
const attach = Element.prototype.attachShadow;
Element.prototype.attachShadow = function (init) {
  return attach.call(this, Object.assign({}, init, {mode: "open"}));
};
"""
# Material takes the class off a diagram's <pre> as it starts to draw it.
DIAGRAMS = """JSON.stringify({
  sources: document.querySelectorAll('pre.mermaid, pre[class=""]').length,
  hosts: document.querySelectorAll("div.mermaid").length,
  svgs: [...document.querySelectorAll("div.mermaid")]
    .filter(host => host.shadowRoot && host.shadowRoot.querySelector("svg")).length,
})"""


class Browser:
    """`async with Browser(proxy="127.0.0.1:PORT")`: every request to a host other than
    loopback goes to that proxy, and Chromium resolves no name itself."""

    def __init__(self, proxy: str, timeout: float = 30) -> None:
        self.proxy, self.timeout = proxy, timeout
        self.requested: list[str] = []
        self.profile = tempfile.mkdtemp(prefix="chromium-")
        self.process: subprocess.Popen[bytes] | None = None
        self.socket: WebSocketClientConnection | None = None
        self.calls = 0
        self.loads = 0

    async def __aenter__(self) -> Browser:
        self.process = subprocess.Popen(
            [CHROMIUM, "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic",
             "--no-first-run", "--disable-background-networking",
             "--disable-component-update", "--disable-sync", "--window-size=1280,1600",
             # The browser's own calls home (not the page's): the proxy would see them.
             "--disable-extensions", "--disable-component-extensions-with-background-pages",
             "--disable-default-apps", "--disable-client-side-phishing-detection",
             "--disable-domain-reliability", "--metrics-recording-only",
             "--disable-features=AutofillServerCommunication,OptimizationHints,MediaRouter,"
             "Translate",
             f"--user-data-dir={self.profile}", "--remote-debugging-port=0",
             f"--proxy-server=http://{self.proxy}", "about:blank"],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        port = await self._devtools_port()
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/json/list", timeout=10) as reply:
            targets = json.loads(reply.read())
        page = next(target for target in targets if target["type"] == "page")
        self.socket = await websocket_connect(page["webSocketDebuggerUrl"],
                                              max_message_size=64 * 1024 * 1024)
        for domain in ("Page", "Network", "Runtime"):
            await self.call(f"{domain}.enable")
        await self.call("Network.setCacheDisabled", cacheDisabled=True)
        await self.call("Page.addScriptToEvaluateOnNewDocument", source=OPEN_SHADOW_ROOTS)
        return self

    async def __aexit__(self, kind: type[BaseException] | None, error: BaseException | None,
                        trace: TracebackType | None) -> None:
        if self.socket is not None:
            self.socket.close()
        if self.process is not None:
            self.process.terminate()
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        shutil.rmtree(self.profile, ignore_errors=True)

    async def _devtools_port(self) -> int:
        active = Path(self.profile) / "DevToolsActivePort"
        deadline = time.monotonic() + self.timeout
        while time.monotonic() < deadline:
            if active.is_file() and active.read_text().strip():
                return int(active.read_text().split()[0])
            await asyncio.sleep(0.1)
        raise TimeoutError("Chromium did not open its DevTools port")

    async def call(self, method: str, **params: Any) -> dict[str, Any]:
        assert self.socket is not None
        self.calls += 1
        number = self.calls
        await self.socket.write_message(json.dumps({"id": number, "method": method,
                                                    "params": params}))
        while True:
            message = await self.socket.read_message()
            if message is None:
                raise ConnectionError("Chromium closed the DevTools connection")
            answer = json.loads(message)
            if answer.get("method") == "Network.requestWillBeSent":
                self.requested.append(answer["params"]["request"]["url"])
            if answer.get("method") == "Page.loadEventFired":
                self.loads += 1
            if answer.get("id") == number:
                if "error" in answer:
                    raise RuntimeError(f"{method}: {answer['error']}")
                return dict(answer["result"])

    async def diagrams(self, url: str, wait_for_svgs: int, settle: float = 1.5) -> dict[str, Any]:
        """Loads `url` and counts its diagrams: sources not drawn, hosts, SVGs drawn. Waits
        until `wait_for_svgs` are drawn, or, when that is 0, for `settle` seconds."""
        loads = self.loads
        await self.call("Page.navigate", url=url)
        deadline = time.monotonic() + self.timeout
        while self.loads == loads:  # counted while answers to calls are read
            if time.monotonic() > deadline:
                raise TimeoutError(f"{url} did not load")
            await asyncio.sleep(0.1)
            await self.call("Runtime.evaluate", expression="1")
        if not wait_for_svgs:
            deadline = time.monotonic() + settle
        while True:
            await asyncio.sleep(0.2)
            result = await self.call("Runtime.evaluate", expression=DIAGRAMS)
            counts = dict(json.loads(result["result"].get("value", "{}") or "{}"))
            if (wait_for_svgs and counts.get("svgs") == wait_for_svgs
                    and counts.get("sources") == 0) or time.monotonic() > deadline:
                return counts
