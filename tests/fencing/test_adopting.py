"""What an adopter meets first: the version, and the library's logging in an application
that set up none (each in a fresh interpreter, as an application would start)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import fencing

# A lease released after it expired: the library logs a WARNING on `fencing`.
RELEASE_LATE = """if True:
    import logging, sys, time, redis
    from fencing.sync import FencedLock
    if sys.argv[2] == "configured":
        logging.basicConfig(level=logging.WARNING)
    lock = FencedLock(redis.Redis.from_url(sys.argv[1]), ttl_ms=50, prefix=sys.argv[3])
    lease = lock.acquire("doc:1")
    time.sleep(0.2)
    assert lock.release(lease) is False
"""


def python(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, *args], capture_output=True, text=True, timeout=60,
                          check=True)


def test_the_version_is_the_same_from_the_package_and_both_commands() -> None:
    assert fencing.__version__.count(".") >= 2
    assert python("-m", "fencing", "--version").stdout == f"redis-fencing {fencing.__version__}\n"
    script = Path(sys.executable).with_name("fencing")
    done = subprocess.run([str(script), "--version"], capture_output=True, text=True,
                          timeout=60, check=True)
    assert done.stdout == f"redis-fencing {fencing.__version__}\n"


def test_an_application_without_logging_set_up_sees_nothing_on_stderr(
        redis_url: str, unique_name: str) -> None:
    quiet = python("-c", RELEASE_LATE, redis_url, "bare", unique_name)
    assert quiet.stderr == ""
    # The same warning reaches an application that set logging up.
    told = python("-c", RELEASE_LATE, redis_url, "configured", unique_name)
    assert "WARNING:fencing:lease " in told.stderr and "had already expired" in told.stderr


def test_without_the_null_handler_python_would_print_it() -> None:
    # What the NullHandler prevents: Python's last-resort handler prints WARNINGs of a
    # logger tree that has no handler at all.
    bare = python("-c", "import logging; logging.getLogger('elsewhere').warning('lease lost')")
    assert bare.stderr == "lease lost\n"
    quiet = python("-c", "import logging, fencing; logging.getLogger('fencing.lock')"
                         ".warning('lease lost')")
    assert quiet.stderr == ""
