"""What orders reads besides the kit's settings (`servicekit.settings`), declared once each."""

from __future__ import annotations

from dataclasses import dataclass

from servicekit.settings import Settings, non_negative, one_of, port, positive, setting, url


@dataclass(frozen=True)
class OrderSettings(Settings):
    orders_port: int = setting("ORDERS_PORT", 3000, "listening port of orders", port)
    invoices_url: str = setting("INVOICES_URL", "http://127.0.0.1:3001",
                                "base URL orders uses to reach invoices", url("http", "https"))
    lock_wait_ms: int = setting(
        "LOCK_WAIT_MS", 0, "how long an update waits in line for a busy lock before answering "
        "423 (0: at once)", non_negative)
    http_timeout_ms: int = setting("HTTP_TIMEOUT_MS", 5_000,
                                   "bound on each call from orders to invoices", positive)
    http_client: str = setting(
        "HTTP_CLIENT", "curl", "orders' own HTTP client to invoices: `curl` (libcurl, keeps "
        "connections alive) or `simple` (Tornado's, a new connection per call)",
        one_of("curl", "simple"))
    repair_interval_ms: int = setting(
        "REPAIR_INTERVAL_MS", 5_000, "how often orders settles interrupted changes "
        "(0: never)", non_negative)
