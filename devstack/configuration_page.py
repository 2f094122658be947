"""The tables of docs/services/configuration.md, made from the settings' declaration: one
for the kit's settings, which every service reads, and one per service of
`devstack.services`. `python -m devstack.configuration_page` rewrites them in place;
tests/servicekit/test_settings.py fails while the page is not what this makes.
"""

from __future__ import annotations

import re
import sys
from pathlib import Path

from devstack.services import SERVICES
from servicekit import settings_table
from servicekit.settings import Settings

PAGE = Path(__file__).parents[1] / "docs" / "services" / "configuration.md"
TABLE = re.compile(r"(<!-- settings of (?P<name>[\w ]+), made by devstack\.configuration_page "
                   r"-->\n).*?(?=<!-- end of table -->)", re.DOTALL)


def tables() -> dict[str, str]:
    """The Markdown table of each reader: "every service", then each service by name."""
    return {"every service": settings_table.markdown(settings_table.own(Settings)),
            **{spec.name: settings_table.markdown(settings_table.own(spec.settings, Settings))
               for spec in SERVICES}}


def render(page: str) -> str:
    """The page with each table between its markers made again."""
    made = tables()
    return TABLE.sub(lambda match: match.group(1) + made[match.group("name")], page)


def main() -> int:
    PAGE.write_text(render(PAGE.read_text(encoding="utf-8")), encoding="utf-8")
    print(f"rewrote the settings tables of {PAGE}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
