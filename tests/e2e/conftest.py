"""Environment of the multi-process tests: one database and key prefix per test."""

from __future__ import annotations

import pytest


@pytest.fixture
def cluster_env(mongo_url: str, redis_url: str, unique_name: str) -> dict[str, str]:
    return {"MONGO_URL": mongo_url, "REDIS_URL": redis_url, "MONGO_DB": unique_name,
            "LOCK_PREFIX": unique_name, "LOCK_TTL_MS": "3000", "HTTP_TIMEOUT_MS": "5000",
            "MONGO_TIMEOUT_MS": "5000", "REDIS_TIMEOUT_MS": "2000",
            "PYTHONUNBUFFERED": "1", "INVOICES_API_KEY": f"key-{unique_name}-0123456789"}
