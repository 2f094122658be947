"""What invoices reads besides the kit's settings (`servicekit.settings`), declared once each."""

from __future__ import annotations

from dataclasses import dataclass

from servicekit.settings import Settings, port, setting


@dataclass(frozen=True)
class InvoiceSettings(Settings):
    invoices_port: int = setting("INVOICES_PORT", 3001, "listening port of invoices", port)
