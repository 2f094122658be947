"""Logs a person and a machine can follow.

LOG_FORMAT=json (the default when stderr is not a terminal): one JSON object
per line with time, level, service, instance, logger, message, trace_id and
span_id when tracing is on, and every field the line carries (`extra=`): the
kit's event, token, resources, route, method, status, duration_ms, and a
service's own, such as order_id and invoice_id. LOG_FORMAT=text (the default
in a terminal, and what `make run` sets): the same lines as readable text.
"""

from __future__ import annotations

import json
import logging
import os
import socket
import sys
from datetime import datetime, timezone

from servicekit.tracing import current_ids

# What every LogRecord has; anything else on a record came in through `extra=`.
_STANDARD = frozenset(logging.LogRecord("", 0, "", 0, "", (), None).__dict__) | {
    "message", "asctime"}


class JsonFormatter(logging.Formatter):
    def __init__(self, service: str, instance: str) -> None:
        super().__init__()
        self.service = service
        self.instance = instance

    def format(self, record: logging.LogRecord) -> str:
        line: dict[str, object] = {
            "time": datetime.fromtimestamp(record.created, timezone.utc).isoformat(
                timespec="milliseconds").replace("+00:00", "Z"),
            "level": record.levelname.lower(), "service": self.service,
            "instance": self.instance, "logger": record.name, "message": record.getMessage()}
        ids = current_ids()
        if ids:
            line["trace_id"], line["span_id"] = ids
        for field, value in record.__dict__.items():
            if field not in _STANDARD and value is not None:
                line.setdefault(field, value)
        if record.exc_info:
            line["error"] = self.formatException(record.exc_info)
        return json.dumps(line, default=str)


def configure_logging(service: str, port: int | None = None, fmt: str = "") -> None:
    """`fmt` "json" or "text"; empty: json unless stderr is a terminal."""
    fmt = fmt or ("text" if sys.stderr.isatty() else "json")
    handler = logging.StreamHandler(sys.stderr)
    if fmt == "json":
        instance = f"{socket.gethostname()}:{port}" if port else socket.gethostname()
        handler.setFormatter(JsonFormatter(service, f"{instance}/{os.getpid()}"))
    else:
        handler.setFormatter(logging.Formatter(
            "%(asctime)s %(levelname)s %(name)s: %(message)s"))
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(logging.INFO)
