"""The invoices application factory."""

from __future__ import annotations

from typing import Any

from fencing import FencedLock
from invoices.handlers import InvoiceHandler, InvoicesHandler
from invoices.naive import NaiveInvoiceService
from invoices.service import InvoiceService
from invoices.store import InvoiceStore
from invoices.settings import InvoiceSettings
from servicekit.app import ServiceApp, make_application
from servicekit.faults import NO_FAULTS, Faults
from servicekit.metrics import Metrics
from servicekit.observed_lock import ObservedLock
from servicekit.server import Resources


def make_app(settings: InvoiceSettings, mongo: Any, redis: Any,
             lock: FencedLock) -> ServiceApp[InvoiceService]:
    faults = Faults(settings.faults, ("invoice_after_write",)) if settings.test_mode else NO_FAULTS
    metrics = Metrics()
    observed = ObservedLock(lock, metrics)
    store = InvoiceStore(mongo[settings.mongo_db], metrics)
    service = (NaiveInvoiceService(store, observed, faults, redis=redis,
                                   prefix=settings.lock_prefix)
               if settings.unsafe_naive else InvoiceService(store, observed, faults))
    handler_args = {"service": service, "api_key": settings.invoices_api_key}
    application, inflight = make_application(
        [(r"/invoices", InvoicesHandler, handler_args),
         (r"/invoices/([^/]+)", InvoiceHandler, handler_args)], mongo, redis, metrics)
    return ServiceApp(application, service, metrics, inflight)


async def build(resources: Resources[InvoiceSettings]) -> ServiceApp[InvoiceService]:
    """make_app, and the indexes created at start-up."""
    app = make_app(resources.settings, resources.mongo, resources.redis, resources.lock)
    await app.service.store.create_indexes()
    return app
