"""Settings of both services, read once from environment variables.

Every variable, with its default:

=====================  ==========================  ==============================================
variable               default                     meaning
=====================  ==========================  ==============================================
ORDERS_PORT            3000                        listening port of orders
INVOICES_PORT          3001                        listening port of invoices
HOST                   127.0.0.1                   listening address
MONGO_URL              mongodb://127.0.0.1:27017   MongoDB connection string (TLS/auth options
                                                   pass through unchanged)
MONGO_DB               distributed_lock            database name
REDIS_URL              redis://127.0.0.1:6379/0    Redis connection string (rediss:// for TLS)
REDIS_CLUSTER          (unset)                     on: REDIS_URL names a node of a Redis Cluster
                                                   (redis-py's RedisCluster discovers the rest)
REDIS_SENTINELS        (unset)                     "host:port,host:port,...": ask these Redis
                                                   Sentinels for the master (REDIS_URL then gives
                                                   only credentials, database and TLS)
REDIS_SENTINEL_MASTER  mymaster                    the master's name known to the sentinels
INVOICES_URL           http://127.0.0.1:3001       base URL orders uses to reach invoices
LOCK_TTL_MS            10000                       lock lease time
LOCK_WAIT_MS           0                           how long an update waits for a busy lock
                                                   before answering 423 (0: answer at once)
LOCK_PREFIX            fencing                     prefix of every lock key in Redis (no braces:
                                                   the keys' hash tags are in braces)
MONGO_TIMEOUT_MS       5000                        bound on each MongoDB operation
REDIS_TIMEOUT_MS       2000                        bound on each Redis call
HTTP_TIMEOUT_MS        5000                        bound on each call from orders to invoices
HTTP_CLIENT            curl                        orders' HTTP client to invoices: curl (pycurl,
                                                   keeps connections alive) or simple (Tornado's
                                                   own, a new connection per call)
SHUTDOWN_GRACE_MS      10000                       how long a stopping instance lets requests finish
INVOICES_API_KEY       (unset)                     shared secret: invoices accepts writes only with
                                                   "Authorization: Bearer <key>", orders sends it;
                                                   unset: no check (refused with --env=production)
REPAIR_INTERVAL_MS     5000                        how often orders settles interrupted changes
                                                   (0: never; see orders.repair)
LOG_FORMAT             json (text in a terminal)   one JSON object per log line, or plain text
DLOCK_TEST_MODE        (unset)                     on: allows DLOCK_FAULTS (tests only)
DLOCK_FAULTS           (unset)                     test-only fault hooks, see servicekit.faults
DLOCK_UNSAFE_NAIVE     (unset)                     on: the Go original's UNSAFE lock, for the
                                                   chaos demo only (needs DLOCK_TEST_MODE=1)
=====================  ==========================  ==============================================

A switch is on with 1, true, yes or on and off with 0, false, no or off (any
case). `--env=local|production` on the command line first loads `.env.local`
or `.env.production` from the working directory, if present; real environment
variables win over the file. A bad value stops the service with the
variable's name.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Callable, Mapping, Sequence

from servicekit import faults


class SettingsError(ValueError):
    """A variable has a value the service cannot use."""


@dataclass(frozen=True)
class Settings:
    orders_port: int = 3000
    invoices_port: int = 3001
    host: str = "127.0.0.1"
    mongo_url: str = "mongodb://127.0.0.1:27017"
    mongo_db: str = "distributed_lock"
    redis_url: str = "redis://127.0.0.1:6379/0"
    redis_cluster: bool = False
    redis_sentinels: tuple[tuple[str, int], ...] = ()
    redis_sentinel_master: str = "mymaster"
    invoices_url: str = "http://127.0.0.1:3001"
    lock_ttl_ms: int = 10_000
    lock_wait_ms: int = 0
    lock_prefix: str = "fencing"
    mongo_timeout_ms: int = 5_000
    redis_timeout_ms: int = 2_000
    http_timeout_ms: int = 5_000
    http_client: str = "curl"
    shutdown_grace_ms: int = 10_000
    repair_interval_ms: int = 5_000
    log_format: str = ""  # empty: json, or text when stderr is a terminal
    invoices_api_key: str = ""
    env: str = "local"
    test_mode: bool = False
    faults: str = ""
    unsafe_naive: bool = False


def _port(text: str) -> int:
    value = int(text)
    if not 0 < value < 65536:
        raise ValueError("not a port")
    return value


def _positive(text: str) -> int:
    value = int(text)
    if value <= 0:
        raise ValueError("must be > 0")
    return value


def _non_negative(text: str) -> int:
    value = int(text)
    if value < 0:
        raise ValueError("must be >= 0")
    return value


def _url(*schemes: str) -> Callable[[str], str]:
    def check(text: str) -> str:
        if not text.startswith(tuple(f"{scheme}://" for scheme in schemes)):
            raise ValueError(f"must start with {' or '.join(s + '://' for s in schemes)}")
        return text.rstrip("/") if schemes[0].startswith("http") else text
    return check


def _addresses(text: str) -> tuple[tuple[str, int], ...]:
    addresses = []
    for item in text.split(","):
        host, colon, port = item.strip().rpartition(":")
        if not colon or not host:
            raise ValueError("must be host:port,host:port,...")
        addresses.append((host, _port(port)))
    return tuple(addresses)


_ON, _OFF = ("1", "true", "yes", "on"), ("0", "false", "no", "off")


def _switch(text: str) -> bool:
    if text.strip().lower() in _ON:
        return True
    if text.strip().lower() in _OFF:
        return False
    raise ValueError(f"must be one of {'/'.join(_ON)} or {'/'.join(_OFF)}")


def _lock_prefix(text: str) -> str:
    if "{" in text or "}" in text:
        raise ValueError("must not contain braces: the lock puts the keys' hash tag in them")
    return text


def _fault_spec(text: str) -> str:
    faults.parse(text)  # raises ValueError naming the bad point or action
    return text


def _one_of(*choices: str) -> Callable[[str], str]:
    def check(text: str) -> str:
        if text not in choices:
            raise ValueError(f"must be one of {', '.join(choices)}")
        return text
    return check


# variable -> (field, cast)
VARIABLES: dict[str, tuple[str, Callable[[str], object]]] = {
    "ORDERS_PORT": ("orders_port", _port),
    "INVOICES_PORT": ("invoices_port", _port),
    "HOST": ("host", str),
    "MONGO_URL": ("mongo_url", _url("mongodb", "mongodb+srv")),
    "MONGO_DB": ("mongo_db", str),
    "REDIS_URL": ("redis_url", _url("redis", "rediss", "unix")),
    "REDIS_CLUSTER": ("redis_cluster", _switch),
    "REDIS_SENTINELS": ("redis_sentinels", _addresses),
    "REDIS_SENTINEL_MASTER": ("redis_sentinel_master", str),
    "INVOICES_URL": ("invoices_url", _url("http", "https")),
    "LOCK_TTL_MS": ("lock_ttl_ms", _positive),
    "LOCK_WAIT_MS": ("lock_wait_ms", _non_negative),
    "LOCK_PREFIX": ("lock_prefix", _lock_prefix),
    "MONGO_TIMEOUT_MS": ("mongo_timeout_ms", _positive),
    "REDIS_TIMEOUT_MS": ("redis_timeout_ms", _positive),
    "HTTP_TIMEOUT_MS": ("http_timeout_ms", _positive),
    "HTTP_CLIENT": ("http_client", _one_of("curl", "simple")),
    "SHUTDOWN_GRACE_MS": ("shutdown_grace_ms", _non_negative),
    "REPAIR_INTERVAL_MS": ("repair_interval_ms", _non_negative),
    "LOG_FORMAT": ("log_format", _one_of("json", "text")),
    "INVOICES_API_KEY": ("invoices_api_key", str),
    "DLOCK_TEST_MODE": ("test_mode", _switch),
    "DLOCK_FAULTS": ("faults", _fault_spec),
    "DLOCK_UNSAFE_NAIVE": ("unsafe_naive", _switch),
}


def read_env_file(path: str) -> dict[str, str]:
    """KEY=VALUE lines; blank lines and # comments skipped; quotes around values removed."""
    values: dict[str, str] = {}
    with open(path, encoding="utf-8") as env_file:
        for line in env_file:
            line = line.strip()
            if not line or line.startswith("#") or "=" not in line:
                continue
            key, value = line.split("=", 1)
            values[key.strip()] = value.strip().strip("'\"")
    return values


def env_flag(argv: Sequence[str]) -> str:
    """The value of `--env=NAME` (or `--env NAME`), default "local"."""
    for index, arg in enumerate(argv):
        if arg.startswith("--env="):
            return arg.split("=", 1)[1]
        if arg == "--env" and index + 1 < len(argv):
            return argv[index + 1]
    return "local"


def load_settings(argv: Sequence[str] = (), environ: Mapping[str, str] | None = None,
                  directory: str = ".") -> Settings:
    env = env_flag(argv)
    if env not in ("local", "production"):
        raise SettingsError(f"--env must be local or production, got {env!r}")
    values: dict[str, str] = {}
    env_file = os.path.join(directory, f".env.{env}")
    if os.path.exists(env_file):
        values.update(read_env_file(env_file))
    values.update(os.environ if environ is None else environ)
    fields: dict[str, object] = {"env": env}
    for variable, (field, cast) in VARIABLES.items():
        if variable in values and values[variable] != "":
            try:
                fields[field] = cast(values[variable])
            except ValueError as exc:
                raise SettingsError(f"{variable}={values[variable]!r}: {exc}") from None
    settings = Settings(**fields)  # type: ignore[arg-type]
    if settings.env == "production" and len(settings.invoices_api_key) < 16:
        raise SettingsError("INVOICES_API_KEY: set a secret of at least 16 characters for "
                            "--env=production (invoices accepts writes only with it)")
    if settings.redis_cluster and settings.redis_sentinels:
        raise SettingsError("REDIS_CLUSTER and REDIS_SENTINELS: set one of them, not both "
                            "(a Redis Cluster fails over by itself)")
    test_only = {"DLOCK_FAULTS": bool(settings.faults),
                 "DLOCK_UNSAFE_NAIVE": settings.unsafe_naive}
    for name, on in test_only.items():
        if on and (not settings.test_mode or settings.env == "production"):
            raise SettingsError(f"{name} is for tests only: it needs DLOCK_TEST_MODE=1 "
                                "and is refused with --env=production")
    return settings
