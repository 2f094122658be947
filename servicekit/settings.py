"""Settings, declared once each: a field of a frozen dataclass that names its variable, its
cast, its default and what it means.

The kit's `Settings` holds what every service reads; a service subclasses it
with its own (`orders.settings`, `invoices.settings`). `load_settings` reads
a class's variables from the environment; the same declaration prints the
`--help` table (`servicekit.settings_table`) and makes the table of
docs/services/configuration.md, which a test keeps in step. How a value is
read is `HOW_VALUES_ARE_READ`, which `--help` prints under the table.
"""

from __future__ import annotations

import dataclasses
import os
from dataclasses import dataclass
from typing import Any, Callable, Iterator, Mapping, NamedTuple, Sequence, TypeVar, overload

from servicekit import faults

T = TypeVar("T")

HOW_VALUES_ARE_READ = """\
A switch is on with 1, true, yes or on and off with 0, false, no or off (any
case); an empty value counts as unset. `--env=local|production` on the command
line first loads `.env.local` or `.env.production` from the working directory,
if present; real environment variables win over the file. A bad value stops
the service with the variable's name.
"""


class SettingsError(ValueError):
    """A variable has a value the service cannot use."""


# The casts: each takes the variable's text and returns the value or raises ValueError
# (load_settings names the variable). The public ones serve the services' own settings.

def port(text: str) -> int:
    value = int(text)
    if not 0 < value < 65536:
        raise ValueError("not a port")
    return value


def positive(text: str) -> int:
    value = int(text)
    if value <= 0:
        raise ValueError("must be > 0")
    return value


def non_negative(text: str) -> int:
    value = int(text)
    if value < 0:
        raise ValueError("must be >= 0")
    return value


def url(*schemes: str) -> Callable[[str], str]:
    def check(text: str) -> str:
        if not text.startswith(tuple(f"{scheme}://" for scheme in schemes)):
            raise ValueError(f"must start with {' or '.join(s + '://' for s in schemes)}")
        return text.rstrip("/") if schemes[0].startswith("http") else text
    return check


def _addresses(text: str) -> tuple[tuple[str, int], ...]:
    addresses = []
    for item in text.split(","):
        host, colon, number = item.strip().rpartition(":")
        if not colon or not host:
            raise ValueError("must be host:port,host:port,...")
        addresses.append((host, port(number)))
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


def one_of(*choices: str) -> Callable[[str], str]:
    def check(text: str) -> str:
        if text not in choices:
            raise ValueError(f"must be one of {', '.join(choices)}")
        return text
    return check


class Declared(NamedTuple):
    """One setting as its class declares it."""

    variable: str
    field: str
    cast: Callable[[str], Any]
    default: str  # as a person reads it
    meaning: str


def setting(variable: str, default: T, meaning: str, cast: Callable[[str], T],
            shown: str | None = None) -> T:
    """A settings field read from `variable` with `cast`; `meaning` and `shown` (the
    default as the table prints it; else the default itself) make its row in the tables."""
    return dataclasses.field(default=default, metadata={
        "variable": variable, "cast": cast, "meaning": meaning,
        "shown": str(default) if shown is None else shown})


def declared(kind: type) -> Iterator[Declared]:
    """The settings of a class, its bases' first, in the order they are declared."""
    for item in dataclasses.fields(kind):
        if "variable" in item.metadata:
            meta = item.metadata
            yield Declared(meta["variable"], item.name, meta["cast"], meta["shown"],
                           meta["meaning"])


@dataclass(frozen=True)
class Settings:
    """What every service reads. The checks across settings are in `check`, which a
    service's own settings may extend."""

    host: str = setting("HOST", "127.0.0.1", "listening address", str)
    mongo_url: str = setting(
        "MONGO_URL", "mongodb://127.0.0.1:27017",
        "MongoDB connection string (TLS and auth options pass through)",
        url("mongodb", "mongodb+srv"))
    mongo_db: str = setting("MONGO_DB", "distributed_lock", "database name", str)
    redis_url: str = setting("REDIS_URL", "redis://127.0.0.1:6379/0",
                             "Redis connection string (`rediss://` for TLS)",
                             url("redis", "rediss", "unix"))
    redis_cluster: bool = setting(
        "REDIS_CLUSTER", False, "on: `REDIS_URL` names one node of a Redis Cluster; "
        "redis-py's `RedisCluster` finds the rest", _switch, shown="off")
    redis_sentinels: tuple[tuple[str, int], ...] = setting(
        "REDIS_SENTINELS", (), "`host:port,host:port,...`: ask these Redis Sentinels for the "
        "master; `REDIS_URL` then gives only the credentials, database and TLS (`rediss://`)",
        _addresses, shown="unset")
    redis_sentinel_master: str = setting("REDIS_SENTINEL_MASTER", "mymaster",
                                         "the master's name known to the sentinels", str)
    lock_ttl_ms: int = setting("LOCK_TTL_MS", 10_000, "lock lease time", positive)
    lock_prefix: str = setting(
        "LOCK_PREFIX", "fencing", "prefix of every lock key in Redis; no braces (the keys' "
        "hash tags are in braces)", _lock_prefix)
    mongo_timeout_ms: int = setting("MONGO_TIMEOUT_MS", 5_000,
                                    "bound on each MongoDB operation", positive)
    redis_timeout_ms: int = setting("REDIS_TIMEOUT_MS", 2_000, "bound on each Redis call",
                                    positive)
    shutdown_grace_ms: int = setting(
        "SHUTDOWN_GRACE_MS", 10_000, "how long a stopping instance lets requests in flight "
        "finish", non_negative)
    log_format: str = setting(  # empty: json, or text when stderr is a terminal
        "LOG_FORMAT", "", "one JSON object per log line, or plain text",
        one_of("json", "text"), shown="json (text in a terminal, and under `make run`)")
    invoices_api_key: str = setting(
        "INVOICES_API_KEY", "", "shared secret for invoice writes (`Authorization: Bearer`); "
        "orders sends it; unset: no check; required (16+ characters) with `--env=production`",
        str, shown="unset (`make run` generates one)")
    test_mode: bool = setting("DLOCK_TEST_MODE", False,
                              "on: allows `DLOCK_FAULTS` and `DLOCK_UNSAFE_NAIVE` (tests only)",
                              _switch, shown="off")
    faults: str = setting(
        "DLOCK_FAULTS", "", "test-only fault hooks (`servicekit/faults.py`): crash, stop or "
        "delay at a named step; needs `DLOCK_TEST_MODE=1`, refused with `--env=production`",
        _fault_spec, shown="unset")
    unsafe_naive: bool = setting(
        "DLOCK_UNSAFE_NAIVE", False, "on: the Go original's unsafe lock, for `make chaos` only; "
        "needs `DLOCK_TEST_MODE=1`, refused with `--env=production`", _switch, shown="off")
    env: str = "local"  # from --env, not a variable

    def check(self) -> None:
        """Raise SettingsError when settings that are each fine do not go together."""
        if self.env == "production" and len(self.invoices_api_key) < 16:
            raise SettingsError("INVOICES_API_KEY: set a secret of at least 16 characters for "
                                "--env=production (invoices accepts writes only with it)")
        if self.redis_cluster and self.redis_sentinels:
            raise SettingsError("REDIS_CLUSTER and REDIS_SENTINELS: set one of them, not both "
                                "(a Redis Cluster fails over by itself)")
        test_only = {"DLOCK_FAULTS": bool(self.faults), "DLOCK_UNSAFE_NAIVE": self.unsafe_naive}
        for name, on in test_only.items():
            if on and (not self.test_mode or self.env == "production"):
                raise SettingsError(f"{name} is for tests only: it needs DLOCK_TEST_MODE=1 "
                                    "and is refused with --env=production")


S = TypeVar("S", bound=Settings)


def port_setting(kind: type[Settings]) -> Declared:
    """The one setting of a service's own settings that is its listening port."""
    [found] = [item for item in declared(kind) if item.cast is port]
    return found


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


@overload
def load_settings(argv: Sequence[str] = (), environ: Mapping[str, str] | None = None,
                  directory: str = ".") -> Settings: ...


@overload
def load_settings(argv: Sequence[str] = (), environ: Mapping[str, str] | None = None,
                  directory: str = ".", *, kind: type[S]) -> S: ...


def load_settings(argv: Sequence[str] = (), environ: Mapping[str, str] | None = None,
                  directory: str = ".", *, kind: type[Settings] = Settings) -> Settings:
    """The settings of `kind` (a service's own class; the kit's alone by default)."""
    env = env_flag(argv)
    if env not in ("local", "production"):
        raise SettingsError(f"--env must be local or production, got {env!r}")
    values: dict[str, str] = {}
    env_file = os.path.join(directory, f".env.{env}")
    if os.path.exists(env_file):
        values.update(read_env_file(env_file))
    values.update(os.environ if environ is None else environ)
    fields: dict[str, object] = {"env": env}
    for item in declared(kind):
        text = values.get(item.variable, "")
        if text != "":
            try:
                fields[item.field] = item.cast(text)
            except ValueError as exc:
                raise SettingsError(f"{item.variable}={text!r}: {exc}") from None
    settings = kind(**fields)  # type: ignore[arg-type]
    settings.check()
    return settings
