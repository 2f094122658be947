"""The chaos faults are declared once: the runner draws from the registry and the report's
legend and colours are made from it, so a fault added there is drawn and explained."""

from __future__ import annotations

import json
import re
from pathlib import Path

from devstack.chaos.faults import FAULTS, ONCE_FAULTS, RANDOM_FAULTS
from devstack.history import History
from devstack.report import write_report


def test_each_fault_has_one_kind_and_is_drawn_at_random_or_once() -> None:
    assert len({fault.kind for fault in FAULTS}) == len(FAULTS)
    assert sorted(map(id, RANDOM_FAULTS + ONCE_FAULTS)) == sorted(map(id, FAULTS))


def test_the_report_legend_and_colours_are_the_registrys(tmp_path: Path) -> None:
    page = write_report(tmp_path / "report.html", {"fenced": History()}, True).read_text()
    legend = re.findall(r'<span><i style="background:(#[0-9a-f]{6})"></i>([^<]+)</span>',
                        page.split('<p class="legend">')[1].split("</p>")[0])
    assert legend[:len(FAULTS)] == [(fault.colour, fault.legend) for fault in FAULTS]
    [fill] = re.findall(r"const FAULT_FILL = (\{.*?\});", page)
    assert json.loads(fill) == {fault.kind: fault.colour for fault in FAULTS}
    assert "@" not in page.split("<script>")[1]  # every placeholder filled
