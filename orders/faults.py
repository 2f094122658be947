"""Where a test can crash, stop or delay an orders process (see `servicekit.faults`).

- update and delete: after_lock, after_intent, after_invoice_write,
  before_order_commit, then before_release (the change is committed);
- create: after_invoice_create and before_activate (the invoice exists, the
  order is still pending), then before_release (the order is created);
- the repairer: after_claim (a pending order claimed for its rollback,
  the invoice not yet deleted), before_release after each item it settled.
"""

from __future__ import annotations

from servicekit.faults import NO_FAULTS, Faults
from servicekit.settings import Settings

POINTS = ("after_lock", "after_intent", "after_invoice_write", "before_order_commit",
          "after_invoice_create", "before_activate", "after_claim", "before_release")


def from_settings(settings: Settings) -> Faults:
    return Faults(settings.faults, POINTS) if settings.test_mode else NO_FAULTS
