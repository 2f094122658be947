"""The services of this project, as devstack runs them: one spec each.

A deployment (`devstack.deployment`) starts them in this order and stops them
in reverse, so a service comes after the services it calls; the configuration
page (docs/services/configuration.md) has a table per spec. Another service
is one more spec: its package (`python -m <name>`), its settings class (whose
port setting names its port variable) and the URL variables through which it
calls the others.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Mapping

from invoices.settings import InvoiceSettings
from orders.settings import OrderSettings
from servicekit.settings import Settings, port_setting


@dataclass(frozen=True)
class ServiceSpec:
    name: str  # its package, run as `python -m <name>`
    settings: type[Settings]
    # URL variable -> the service it names: instance i of this service is given the URL
    # of instance i % N of that one (or one address for all, such as a load balancer).
    calls: Mapping[str, str] = field(default_factory=dict)

    @property
    def port_variable(self) -> str:
        return port_setting(self.settings).variable


SERVICES = (
    ServiceSpec("invoices", InvoiceSettings),
    ServiceSpec("orders", OrderSettings, calls={"INVOICES_URL": "invoices"}),
)


def spec(name: str) -> ServiceSpec:
    [found] = [service for service in SERVICES if service.name == name]
    return found
