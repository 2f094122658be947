"""Prometheus metrics of one service instance, served at GET /metrics.

Each application has a registry of its own (tests run several in one
process; a second registration in the global registry would raise). Names
follow Prometheus conventions: base units, `_total` for counters, `_seconds`
for durations. With several instances, each exposes its own; sum them in
Prometheus.

    http_requests_total{route, method, status}
    http_request_duration_seconds{route, method}            histogram
    lock_acquisitions_total{outcome}    acquired | busy | timeout | error
    lock_wait_seconds                                       histogram
    lock_hold_seconds                                       histogram
    lock_releases_total{outcome}        released | not_held | error
    lock_extensions_total{outcome}      extended | lost | error
    lock_leases_lost_total
    fenced_writes_total{store, outcome} accepted | stale_token | lock_not_held | superseded
    dependency_errors_total{dependency} redis | mongodb | invoices (each a 503 answered)

A service adds its own to the same registry (orders: `repairs_total`, see
`orders.repair`).
"""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Histogram

LATENCY_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10)


class Metrics:
    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        r = self.registry
        self.http_requests = Counter(
            "http_requests", "HTTP requests answered", ["route", "method", "status"], registry=r)
        self.http_duration = Histogram(
            "http_request_duration_seconds", "Time to answer an HTTP request",
            ["route", "method"], buckets=LATENCY_BUCKETS, registry=r)
        self.lock_acquisitions = Counter(
            "lock_acquisitions", "Lease acquisitions by outcome", ["outcome"], registry=r)
        self.lock_wait = Histogram(
            "lock_wait_seconds", "Time from asking for a lease to the answer",
            buckets=LATENCY_BUCKETS, registry=r)
        self.lock_hold = Histogram(
            "lock_hold_seconds", "Time a lease was held, acquire to release",
            buckets=LATENCY_BUCKETS, registry=r)
        self.lock_releases = Counter(
            "lock_releases", "Lease releases by outcome", ["outcome"], registry=r)
        self.lock_extensions = Counter(
            "lock_extensions", "Lease extensions by outcome", ["outcome"], registry=r)
        self.leases_lost = Counter(
            "lock_leases_lost", "Leases found lost (expired or taken over) by their holder",
            registry=r)
        self.fenced_writes = Counter(
            "fenced_writes", "Writes carrying a fencing token, by store and outcome",
            ["store", "outcome"], registry=r)
        self.dependency_errors = Counter(
            "dependency_errors", "Calls to a dependency that failed or timed out",
            ["dependency"], registry=r)
