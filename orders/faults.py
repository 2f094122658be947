"""Where a test can crash, stop or delay an orders process (see `servicekit.faults`).

Each step of a flow in `orders.service` ends at one:

- update and delete: after_read (before the lease), after_lock, after_intent,
  after_invoice_write, before_order_commit, then before_release (committed);
- create: after_insert (the order is pending), after_invoice_create and
  before_activate (the invoice exists, the order is still pending), then
  before_release (the order is created);
- settling an intent left behind, inline or by the repairer: after_settle_claim
  (the order carries the settler's token), after_settle_invoice (the invoice is
  settled, the order not yet), then before_release;
- the repairer's rollback of a create: after_claim (the pending order claimed, the
  invoice not yet deleted), after_tombstone (the invoice deleted, the order not yet
  removed), then before_release.
"""

from __future__ import annotations

from servicekit.faults import NO_FAULTS, Faults
from servicekit.settings import Settings

POINTS = ("after_read", "after_lock", "after_intent", "after_invoice_write",
          "before_order_commit", "after_insert", "after_invoice_create", "before_activate",
          "after_settle_claim", "after_settle_invoice", "after_claim", "after_tombstone",
          "before_release")


def from_settings(settings: Settings) -> Faults:
    return Faults(settings.faults, POINTS) if settings.test_mode else NO_FAULTS
