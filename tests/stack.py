"""Both services in the test's own event loop (`devstack.in_process`), and the HTTP helper
that never raises on an error status (`devstack.http`), under the names the tests use."""

from devstack.http import Reply, call
from devstack.in_process import Stack
from devstack.workload import ITEM, USER

__all__ = ["ITEM", "USER", "Reply", "Stack", "call"]
