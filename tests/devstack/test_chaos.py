"""`make chaos`, shortened: the naive strategy breaks and the fenced one holds, on every seed;
the report it writes draws what happened, in a real browser."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Iterator

import pytest

from devstack.report import ANOMALY_COLOUR
from tests.browser import CHROMIUM, chromium

NAIVE, FENCED = "naive (UNSAFE)", "fenced"


def run_chaos(logs: Path, seed: int) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "devstack.chaos", "--seconds", "2",
                           "--calls", "300", "--seed", str(seed), "--logs", str(logs)],
                          capture_output=True, text=True, timeout=200, check=False)


def assert_demonstrated(run: subprocess.CompletedProcess[str], logs: Path) -> dict:
    output = run.stdout + run.stderr
    assert run.returncode == 0, output
    lines = run.stdout.splitlines()
    assert lines[-1] == f"report: {logs / 'report.html'}", output
    table = {line.split("  ")[0]: line.split() for line in lines
             if line.startswith((NAIVE + " ", FENCED + " "))}
    assert int(table[NAIVE][-1]) >= 1 and table[FENCED][-1] == "0", output
    summary = json.loads((logs / "summary.json").read_text())
    assert summary[NAIVE]["anomalies"] >= 1 and summary[FENCED]["anomalies"] == 0, summary
    # The scripted paused holder alone breaks the naive lock, whatever the random faults did.
    assert summary[NAIVE]["scenario_anomalies"] >= 1, summary
    assert summary[FENCED]["scenario_anomalies"] == 0, summary
    assert any(line.startswith(f"  {NAIVE}") and "calls" in line and "faults" in line
               for line in lines), "no progress line"
    return summary


@pytest.fixture(scope="module")
def chaos_run() -> Iterator[Path]:
    logs = Path(tempfile.mkdtemp(prefix="chaos-test-"))
    run = run_chaos(logs, seed=1)
    assert_demonstrated(run, logs)
    yield logs
    shutil.rmtree(logs, ignore_errors=True)


@pytest.mark.slow
@pytest.mark.timeout(240)
@pytest.mark.parametrize("seed", [2, 3])
def test_the_naive_strategy_breaks_and_the_fenced_one_holds(seed: int, tmp_path: Path) -> None:
    assert_demonstrated(run_chaos(tmp_path, seed), tmp_path)


@pytest.mark.slow
@pytest.mark.timeout(240)
def test_the_history_records_every_operation_and_fault(chaos_run: Path) -> None:
    for strategy in ("naive", "fenced"):
        events = [json.loads(line) for line in
                  (chaos_run / strategy / "history.jsonl").read_text().splitlines()]
        invoked = {e["op"] for e in events if e["type"] == "invoke"}
        completed = [e for e in events if e["type"] in ("ok", "fail", "unknown")]
        assert invoked and invoked == {e["op"] for e in completed}
        for op in completed:
            assert op["start"] <= op["end"] and op["instance"] and op["order"]
        kinds = {e["kind"] for e in events if e["type"] == "fault"}
        assert {"freeze", "redis restart"} <= kinds, kinds
    fenced = (chaos_run / "fenced" / "history.jsonl").read_text()
    assert '"type": "invoice_write"' in fenced and '"token": ' in fenced


@pytest.mark.slow
@pytest.mark.timeout(240)
@pytest.mark.skipif(not Path(CHROMIUM).exists(), reason="chromium is not installed")
def test_the_report_draws_faults_writes_and_the_naive_anomalies(chaos_run: Path) -> None:
    report = chaos_run / "report.html"
    assert "http://" not in report.read_text().replace("http://www.w3.org/2000/svg", "")
    dom = chromium("--virtual-time-budget=5000", "--dump-dom", report.as_uri()).stdout
    assert 'data-drawn="1"' in dom, dom[-2000:]
    naive, fenced = dom.split('data-strategy="fenced"')
    summary = json.loads((chaos_run / "summary.json").read_text())
    assert naive.count('class="anomaly"') == summary[NAIVE]["anomalies"] >= 1
    assert fenced.count('class="anomaly"') == 0
    for panel in (naive, fenced):
        assert panel.count('class="fault"') >= 3 and panel.count('class="op-ok"') >= 10
    assert fenced.count('class="accepted"') >= 10 and fenced.count('class="token"') >= 1

    from PIL import Image

    shot = chaos_run / "report.png"
    chromium("--virtual-time-budget=5000", "--window-size=1400,1000",
             f"--screenshot={shot}", report.as_uri())
    image = Image.open(shot).convert("RGB")
    red = tuple(int(ANOMALY_COLOUR[i:i + 2], 16) for i in (1, 3, 5))

    def red_pixels(left: int, right: int) -> int:
        # Below the legend (whose anomaly swatch is red): only the drawn panels.
        data = image.crop((left, 150, right, image.height)).tobytes()
        return sum(1 for pixel in zip(data[0::3], data[1::3], data[2::3])
                   if all(abs(a - b) < 40 for a, b in zip(pixel, red)))

    half = image.width // 2
    assert red_pixels(0, half) > 20, "no anomaly drawn in the naive panel"
    assert red_pixels(half, image.width) == 0, "anomaly colour in the fenced panel"
