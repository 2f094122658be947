"""The orders application factory."""

from __future__ import annotations

import asyncio
from typing import Any

from fencing import FencedLock
from orders import faults as order_faults
from orders.handlers import OrderHandler, OrdersHandler
from orders.naive import NaiveOrderService
from orders.repair import Repairer, repairs_counter
from orders.service import OrderService
from orders.settings import OrderSettings
from orders.store import OrderStore
from servicekit.app import ServiceApp, make_application
from servicekit.invoices_client import InvoicesClient
from servicekit.metrics import Metrics
from servicekit.observed_lock import ObservedLock
from servicekit.server import Resources


def make_app(settings: OrderSettings, mongo: Any, redis: Any,
             lock: FencedLock) -> ServiceApp[OrderService]:
    faults = order_faults.from_settings(settings)
    metrics = Metrics()
    observed = ObservedLock(lock, metrics)
    parts = (OrderStore(mongo[settings.mongo_db], metrics),
             InvoicesClient(settings.invoices_url, settings.http_timeout_ms,
                            settings.invoices_api_key, settings.http_client),
             observed, settings.lock_wait_ms, faults)
    service = (NaiveOrderService(*parts, redis=redis, ttl_ms=settings.lock_ttl_ms,
                                 prefix=settings.lock_prefix)
               if settings.unsafe_naive else OrderService(*parts))
    application, inflight = make_application(
        [(r"/orders", OrdersHandler, {"service": service}),
         (r"/orders/([^/]+)", OrderHandler, {"service": service})], mongo, redis, metrics)
    return ServiceApp(application, service, metrics, inflight)


async def build(resources: Resources[OrderSettings]) -> ServiceApp[OrderService]:
    """make_app, the indexes created at start-up, and the repairer started."""
    settings = resources.settings
    app = make_app(settings, resources.mongo, resources.redis, resources.lock)
    service = app.service
    resources.closing.append(service.invoices.close)
    await service.store.create_indexes()
    if settings.repair_interval_ms > 0:
        repairer = Repairer(service, settings.repair_interval_ms,
                            pending_grace_ms=settings.lock_ttl_ms + settings.http_timeout_ms,
                            repairs=repairs_counter(app.metrics))
        resources.background.append(asyncio.create_task(repairer.run_forever()))
    return app
