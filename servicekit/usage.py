"""`python -m orders --help` (and invoices): say how to start it, instead of starting it."""

from __future__ import annotations

import sys
from typing import Sequence

from servicekit import settings, settings_table

USAGE = """usage: python -m {name} [--env=local|production]

Starts one instance of the {name} service (default port {port}); stop it with
Ctrl-C or SIGTERM: it finishes its requests in flight, then exits.
`make run` starts both services with Redis and a MongoDB-wire server.
Its API: GET /docs (a page to browse and try it) and GET /openapi.yaml.

It reads these environment variables (docs/services/configuration.md):

"""


def exit_if_help(name: str, kind: type[settings.Settings],
                 argv: Sequence[str] | None = None) -> None:
    """Print the usage and every setting the service reads, and exit 0, when asked for
    help."""
    args = sys.argv[1:] if argv is None else argv
    if "-h" in args or "--help" in args:
        sys.stdout.write(USAGE.format(name=name, port=settings.port_setting(kind).default)
                         + settings_table.text(settings_table.own(kind)) + "\n"
                         + settings.HOW_VALUES_ARE_READ)
        raise SystemExit(0)
