"""`--help` says how to start each program and starts nothing."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest


@pytest.mark.parametrize("module, expected", [
    ("orders", "usage: python -m orders"), ("invoices", "usage: python -m invoices"),
    ("devstack", "usage: make run")])
def test_help_prints_the_usage_and_exits_0(module: str, expected: str) -> None:
    # REDIS_URL points nowhere: a server that started anyway would not get far.
    run = subprocess.run([sys.executable, "-m", module, "--help"], capture_output=True,
                         text=True, timeout=60, check=False,
                         env={**os.environ, "REDIS_URL": "redis://127.0.0.1:1/0"})
    assert run.returncode == 0, run.stdout + run.stderr
    assert run.stdout.startswith(expected), run.stdout
    if module != "devstack":
        assert "LOCK_TTL_MS" in run.stdout and "--env=local|production" in run.stdout
