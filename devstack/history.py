"""What happened during one strategy's chaos run, as JSON lines.

Every operation appears twice, in the manner of a Jepsen history: an `invoke`
line when a client sends it, and one completion line when it is answered:

- `ok`: a 2xx answer; the operation happened;
- `fail`: a 4xx answer; the service promises it left no lasting change;
- `unknown`: no answer, or a 5xx; it may or may not have happened.

Each line carries the operation's index (`op`), the client (`process`), the
service instance, the order, the function and its arguments, and times in
seconds since the run began (`start`, and on completions `end`). Faults are
lines of type `fault`, with `start` and `end`. Tokens are filled in after the
run from the services' logs (`tokens_from_logs`), where the log says which
token a write carried.
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any, Iterable, Iterator


def outcome(status: int | None) -> str:
    """The completion type of an HTTP answer: ok, fail or unknown."""
    if status is None or status >= 500:
        return "unknown"
    return "ok" if status < 400 else "fail"


@dataclass
class History:
    names: dict[str, str] = field(default_factory=dict)  # base URL -> instance name
    events: list[dict[str, Any]] = field(default_factory=list)
    origin: float = field(default_factory=time.monotonic)
    wall_origin: float = field(default_factory=time.time)
    _next_op: int = 0

    def start_clock(self) -> None:
        """Time 0 is now (the start of the load, not of the servers)."""
        self.origin, self.wall_origin = time.monotonic(), time.time()

    def now(self) -> float:
        return round(time.monotonic() - self.origin, 4)

    def instance(self, url: str) -> str:
        base = url.split("/orders", 1)[0]
        return self.names.get(base, base)

    def invoke(self, process: int | str, url: str, order: str, f: str,
               value: dict[str, Any] | None = None) -> dict[str, Any]:
        """Record a call being sent; returns the line, for `complete`."""
        self._next_op += 1
        line = {"type": "invoke", "op": self._next_op, "process": process,
                "instance": self.instance(url), "order": order, "f": f,
                "value": value or {}, "start": self.now()}
        self.events.append(line)
        return line

    def complete(self, invoked: dict[str, Any], status: int | None,
                 error: str | None = None) -> dict[str, Any]:
        line = {**invoked, "type": outcome(status), "status": status, "end": self.now()}
        if error:
            line["error"] = error
        self.events.append(line)
        return line

    def fault(self, kind: str, target: str, start: float, note: str) -> dict[str, Any]:
        """Record a fault that began at `start` (from `now()`) and has just ended."""
        line = {"type": "fault", "kind": kind, "target": target, "start": start,
                "end": self.now(), "note": note}
        self.events.append(line)
        return line

    def note(self, line_type: str, **fields: Any) -> None:
        """Anything else worth a line (a phase, an anomaly the checker found)."""
        self.events.append({"type": line_type, "at": self.now(), **fields})

    @property
    def faults(self) -> list[dict[str, Any]]:
        return [event for event in self.events if event["type"] == "fault"]

    @property
    def completions(self) -> list[dict[str, Any]]:
        return [event for event in self.events if event["type"] in ("ok", "fail", "unknown")]

    def since_origin(self, iso_time: str) -> float:
        """A log line's wall-clock time on this history's clock."""
        stamp = datetime.fromisoformat(iso_time.replace("Z", "+00:00")).timestamp()
        return round(stamp - self.wall_origin, 4)

    def tokens_from_logs(self, log_paths: Iterable[Path], invoice_orders: dict[str, str]) -> None:
        """Add the invoice writes the logs name (accepted or refused, with their tokens).

        `invoice_orders` maps an invoice id to its order's id. The naive strategy
        logs no such lines: its writes carry no token."""
        for event in _json_lines(log_paths):
            if event.get("event") not in ("write_accepted", "write_refused"):
                continue
            order = invoice_orders.get(str(event.get("invoice_id")))
            if order is None:
                continue
            self.events.append({
                "type": "invoice_write", "order": order, "token": event.get("token"),
                "accepted": event["event"] == "write_accepted",
                "reason": event.get("outcome"), "current_token": event.get("current_token"),
                "at": self.since_origin(event["time"]), "instance": event.get("instance")})

    def write(self, path: Path) -> None:
        with path.open("w", encoding="utf-8") as out:
            for event in self.events:
                out.write(json.dumps(event, sort_keys=True) + "\n")


def _json_lines(paths: Iterable[Path]) -> Iterator[dict[str, Any]]:
    for path in paths:
        try:
            text = path.read_text(encoding="utf-8", errors="replace")
        except OSError:
            continue
        for line in text.splitlines():
            if line.startswith("{"):
                try:
                    yield json.loads(line)
                except ValueError:
                    continue  # a line cut by a SIGKILL
