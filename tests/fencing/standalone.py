"""The fixtures the library's own tests take, for a run without the suite's conftest files.

`test_standalone.py` runs those tests (`-p tests.fencing.standalone --noconftest`)
in a virtualenv that has the installed library and nothing of the services: the
suite's conftest files import the services; this plugin takes the lock's own
fixtures from tests/fencing/conftest.py (which needs only the library, devstack's
servers and pytest-tornado) and the Redis ones from tests/redis_fixtures.py.
"""

from __future__ import annotations

import fencing
from tests.fencing.conftest import (lock, lock_target, make_lock,  # noqa: F401 (fixtures)
                                    postgres_url, pytest_configure, pytest_generate_tests,
                                    redis_cluster)

pytest_plugins = ["tests.redis_fixtures"]


def pytest_report_header() -> str:
    return f"fencing from: {fencing.__file__}"
