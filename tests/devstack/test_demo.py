"""`make demo`: the story of two concurrent updates, read back from the services' logs."""

from __future__ import annotations

import re
import subprocess
import sys

import pytest


@pytest.mark.slow
def test_the_demo_shows_one_lease_one_423_and_the_token_the_invoice_accepted() -> None:
    run = subprocess.run([sys.executable, "-m", "devstack.demo"], capture_output=True,
                         text=True, timeout=120, check=False)
    assert run.returncode == 0, run.stdout + run.stderr
    out = run.stdout
    assert "-> 200 and 423 locked" in out
    assert "lease_busy" in out
    # The create's lease, then the update's: the invoice accepted the update's token.
    create, update = re.findall(r"lease_acquired\s+token=(\d+)", out)
    assert int(update) > int(create)
    assert f"write_accepted  token={update}" in out
    assert "lock_acquisitions_total{outcome=busy} 1" in out
    assert "order total 20, invoice total 20" in out
