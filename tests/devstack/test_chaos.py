"""`make chaos`, shortened: the fenced strategy comes out with no anomaly."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest


@pytest.mark.slow
@pytest.mark.timeout(240)
def test_the_chaos_demo_finds_no_anomaly_in_the_fenced_strategy(tmp_path: Path) -> None:
    run = subprocess.run([sys.executable, "-m", "devstack.chaos", "--seconds", "6",
                          "--calls", "1000", "--logs", str(tmp_path)],
                         capture_output=True, text=True, timeout=220, check=False)
    assert run.returncode == 0, run.stdout + run.stderr
    table = run.stdout.splitlines()
    fenced = next(line for line in table if line.startswith("fenced "))
    assert fenced.split()[-1] == "0", run.stdout
    assert any(line.startswith("naive (UNSAFE)") for line in table)
