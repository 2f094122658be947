"""The errors only invoices answers with, beside the shared ones (`servicekit.errors`).

::

    ServiceError (servicekit)
    ├── Conflict (servicekit)
    │   ├── StaleToken                409 stale_token (+ current_token)
    │   └── LockNotHeld               409 lock_not_held
    └── FencingTokenRequired          428 fencing_token_required
"""

from __future__ import annotations

from servicekit import errors
from servicekit.errors import Conflict, ServiceError


class StaleToken(Conflict):
    def __init__(self, message: str, current_token: int) -> None:
        super().__init__(message, current_token=current_token)
        self.current_token = current_token


class LockNotHeld(Conflict):
    pass


class FencingTokenRequired(ServiceError):
    pass


ERROR_TABLE: errors.ErrorTable = {
    **errors.ERROR_TABLE,
    StaleToken: (409, "stale_token", None),
    LockNotHeld: (409, "lock_not_held", None),
    FencingTokenRequired: (428, "fencing_token_required", None),
}
