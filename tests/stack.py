"""Both services in the test's own event loop (`devstack.in_process`), and the HTTP helper
that never raises on an error status (`devstack.http`), under the names the tests use."""

from devstack.http import Reply, call
from devstack.in_process import Stack
from devstack.workload import ITEM, USER

# An update_time later than any order's creation.
LATER = "2030-01-01T00:00:00Z"

__all__ = ["ITEM", "LATER", "USER", "Reply", "Stack", "call"]
