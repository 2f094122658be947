"""The errors of `fencing`, one tree::

    LockError                 anything this library raises
    ├── LockBusy              hold(): not acquired within its timeout
    ├── LeaseLost             the lease expired or was taken over; stop acting on it
    └── LockUnavailable       Redis unreachable, timing out, or unable to write for now
                              (OOM, NOREPLICAS, READONLY, ...); services answer 503

`acquire()` returning None is not an error: the resources are held by someone
else, which is the normal answer of a try-lock.
"""


class LockError(Exception):
    """Root of every error raised by `fencing`."""


class LockBusy(LockError):
    """`hold()` could not take every resource before its timeout ran out."""

    def __init__(self, resources: tuple[str, ...], timeout: float | None) -> None:
        self.resources = resources
        self.timeout = timeout
        waited = "without waiting" if timeout is None else f"within {timeout:g}s"
        super().__init__(f"could not lock {', '.join(resources)} {waited}")


class LeaseLost(LockError):
    """The lease is no longer held: it expired, was released, or a renewal found it gone or
    was refused."""


class LockUnavailable(LockError):
    """Redis did not answer in time, refused the connection, or cannot take writes for now
    (out of memory, too few replicas, a replica or a demoted master, loading, busy): a
    retry later may succeed. Refusals that a retry cannot cure (NOPERM, a wrong password)
    are plain `LockError`s; `fencing.core.lock_error` decides.

    A timed-out acquire may still have succeeded on the server; the library
    then deletes what it may have taken (best effort), and the lease TTL bounds
    the rest.
    """
