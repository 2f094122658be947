"""The invoices application factory."""

from __future__ import annotations

from typing import Any

from tornado.web import Application

from fencing import FencedLock
from invoices.handlers import InvoiceHandler, InvoicesHandler
from invoices.naive import NaiveInvoiceService
from invoices.service import InvoiceService
from invoices.store import InvoiceStore
from servicekit.faults import NO_FAULTS, Faults
from servicekit.handlers import NotFoundHandler, common_routes, log_request
from servicekit.metrics import Metrics
from servicekit.observed_lock import ObservedLock
from servicekit.server import InFlight, Resources
from servicekit.settings import Settings


def make_app(settings: Settings, mongo: Any, redis: Any, lock: FencedLock) -> Application:
    faults = (Faults(settings.faults, ("invoice_after_write",)) if settings.test_mode
              else NO_FAULTS)
    metrics = Metrics()
    observed = ObservedLock(lock, metrics)
    store = InvoiceStore(mongo[settings.mongo_db], metrics)
    service = (NaiveInvoiceService(store, observed, faults, redis=redis,
                                   prefix=settings.lock_prefix)
               if settings.unsafe_naive else InvoiceService(store, observed, faults))
    handler_args = {"service": service, "api_key": settings.invoices_api_key}
    return Application(
        [(r"/invoices", InvoicesHandler, handler_args),
         (r"/invoices/([^/]+)", InvoiceHandler, handler_args),
         *common_routes(mongo, redis)],
        default_handler_class=NotFoundHandler, inflight=InFlight(), service=service,
        metrics=metrics, log_function=log_request)


async def build(resources: Resources) -> Application:
    """make_app, and the indexes created at start-up."""
    app = make_app(resources.settings, resources.mongo, resources.redis, resources.lock)
    await app.settings["service"].store.create_indexes()
    return app
