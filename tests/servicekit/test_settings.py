"""Settings: defaults, .env files, environment wins, loud failures naming the variable."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from devstack import configuration_page
from devstack.in_process import StackSettings
from invoices.settings import InvoiceSettings
from orders.settings import OrderSettings
from servicekit.clients import make_mongo, make_redis
from servicekit.settings import Settings, SettingsError, declared, load_settings
from servicekit.usage import exit_if_help

KEY = "k" * 32


def test_the_defaults_are_the_contracts() -> None:
    settings = load_settings(environ={}, directory="/nonexistent", kind=OrderSettings)
    invoices = load_settings(environ={}, directory="/nonexistent", kind=InvoiceSettings)
    assert (settings.orders_port, invoices.invoices_port, settings.host) == (
        3000, 3001, "127.0.0.1")
    assert settings.mongo_url == "mongodb://127.0.0.1:27017"
    assert settings.redis_url == "redis://127.0.0.1:6379/0"
    assert settings.invoices_url == "http://127.0.0.1:3001"
    assert settings.lock_ttl_ms == 10_000 and settings.env == "local"


def test_environment_variables_are_read_and_cast() -> None:
    settings = load_settings(environ={"ORDERS_PORT": "4000", "LOCK_TTL_MS": "2500",
                                      "INVOICES_URL": "http://invoices:3001/",
                                      "REDIS_URL": "rediss://cache:6380/1"},
                             kind=OrderSettings)
    assert settings.orders_port == 4000 and settings.lock_ttl_ms == 2500
    assert settings.invoices_url == "http://invoices:3001"
    assert settings.redis_url == "rediss://cache:6380/1"


def test_an_env_file_is_read_and_the_environment_wins(tmp_path: Path) -> None:
    (tmp_path / ".env.production").write_text(
        "# production\nMONGO_URL='mongodb://mongo:27017/?replicaSet=rs0'\n"
        "LOCK_TTL_MS=8000\n\nHOST=0.0.0.0\n")
    settings = load_settings(["--env=production"], environ={
        "LOCK_TTL_MS": "9000", "INVOICES_API_KEY": KEY}, directory=str(tmp_path))
    assert settings.env == "production" and settings.host == "0.0.0.0"
    assert settings.mongo_url == "mongodb://mongo:27017/?replicaSet=rs0"
    assert settings.lock_ttl_ms == 9000


@pytest.mark.parametrize("variable, value", [
    ("ORDERS_PORT", "http"), ("INVOICES_PORT", "70000"), ("LOCK_TTL_MS", "0"),
    ("LOCK_TTL_MS", "-5"), ("MONGO_URL", "postgres://db"), ("REDIS_URL", "localhost:6379"),
    ("INVOICES_URL", "invoices:3001"), ("LOCK_WAIT_MS", "-1")])
def test_a_bad_value_stops_the_service_naming_the_variable(variable: str, value: str) -> None:
    with pytest.raises(SettingsError, match=variable):
        load_settings(environ={variable: value}, kind=StackSettings)


def test_an_unknown_env_name_is_refused() -> None:
    with pytest.raises(SettingsError, match="--env"):
        load_settings(["--env", "staging"], environ={})


def test_fault_hooks_need_test_mode_and_are_refused_in_production(tmp_path: Path) -> None:
    with pytest.raises(SettingsError, match="DLOCK_TEST_MODE"):
        load_settings(environ={"DLOCK_FAULTS": "after_lock=crash"})
    with pytest.raises(SettingsError, match="production"):
        load_settings(["--env=production"], environ={
            "DLOCK_FAULTS": "after_lock=crash", "DLOCK_TEST_MODE": "1",
            "INVOICES_API_KEY": KEY}, directory=str(tmp_path))
    allowed = load_settings(environ={"DLOCK_FAULTS": "after_lock=crash", "DLOCK_TEST_MODE": "1"})
    assert allowed.test_mode and allowed.faults == "after_lock=crash"


def test_settings_are_frozen() -> None:
    with pytest.raises(AttributeError):
        Settings().lock_ttl_ms = 1  # type: ignore[misc]


def test_the_unsafe_naive_lock_needs_test_mode_and_is_refused_in_production(
        tmp_path: Path) -> None:
    with pytest.raises(SettingsError, match="DLOCK_UNSAFE_NAIVE"):
        load_settings(environ={"DLOCK_UNSAFE_NAIVE": "1"})
    with pytest.raises(SettingsError, match="production"):
        load_settings(["--env=production"], environ={
            "DLOCK_UNSAFE_NAIVE": "1", "DLOCK_TEST_MODE": "1", "INVOICES_API_KEY": KEY},
            directory=str(tmp_path))
    assert load_settings(environ={"DLOCK_UNSAFE_NAIVE": "1", "DLOCK_TEST_MODE": "1"}
                         ).unsafe_naive


def test_production_needs_an_invoices_api_key(tmp_path: Path) -> None:
    with pytest.raises(SettingsError, match="INVOICES_API_KEY"):
        load_settings(["--env=production"], environ={}, directory=str(tmp_path))
    with pytest.raises(SettingsError, match="INVOICES_API_KEY"):
        load_settings(["--env=production"], environ={"INVOICES_API_KEY": "short"},
                      directory=str(tmp_path))


def test_sentinel_addresses_are_parsed_and_the_credentials_come_from_redis_url() -> None:
    settings = load_settings(environ={"REDIS_SENTINELS": "10.0.0.1:26379, sentinel-2:26380",
                                      "REDIS_SENTINEL_MASTER": "locks",
                                      "REDIS_URL": "redis://app:secret@ignored:1/2"})
    assert settings.redis_sentinels == (("10.0.0.1", 26379), ("sentinel-2", 26380))
    client = make_redis(settings)  # connects lazily: nothing is reached here
    pool = client.connection_pool
    assert (pool.service_name, pool.connection_kwargs["username"],
            pool.connection_kwargs["password"], pool.connection_kwargs["db"]) == (
        "locks", "app", "secret", 2)


def test_behind_sentinel_a_rediss_url_means_tls_to_the_master() -> None:
    settings = load_settings(environ={
        "REDIS_SENTINELS": "s:26379",
        "REDIS_URL": "rediss://app:secret@ignored:1/0?ssl_cert_reqs=required"})
    pool = make_redis(settings).connection_pool
    assert pool.connection_class.__name__ == "SentinelManagedSSLConnection"
    assert pool.connection_kwargs["ssl_cert_reqs"] == "required"


@pytest.mark.parametrize("environ", [
    {"REDIS_SENTINELS": "sentinel-1"},
    {"REDIS_SENTINELS": "sentinel-1:0"},
    {"REDIS_SENTINELS": ":26379"},
    {"REDIS_SENTINELS": "s:26379", "REDIS_CLUSTER": "1"},
])
def test_bad_sentinel_settings_stop_the_service(environ: dict[str, str]) -> None:
    with pytest.raises(SettingsError, match="REDIS_SENTINELS"):
        load_settings(environ=environ)


def test_a_replica_set_uri_passes_through_and_writes_wait_for_a_journaled_majority() -> None:
    url = "mongodb://m1:27017,m2:27017,m3:27017/?replicaSet=rs0&tls=true&authSource=admin"
    settings = load_settings(environ={"MONGO_URL": url})
    assert settings.mongo_url == url
    client = make_mongo(settings)  # connect=False: nothing is reached here
    assert client.write_concern.document == {"w": "majority", "j": True}
    assert client.options.replica_set_name == "rs0" and client.options.retry_writes


@pytest.mark.parametrize("text, on", [
    ("1", True), ("true", True), ("Yes", True), ("ON", True),
    ("0", False), ("false", False), ("no", False), ("Off", False)])
def test_a_switch_reads_the_usual_words_for_on_and_off(text: str, on: bool) -> None:
    settings = load_settings(environ={"REDIS_CLUSTER": text, "DLOCK_TEST_MODE": text})
    assert settings.redis_cluster is on and settings.test_mode is on


@pytest.mark.parametrize("variable", ["REDIS_CLUSTER", "DLOCK_TEST_MODE", "DLOCK_UNSAFE_NAIVE"])
def test_a_switch_with_another_word_stops_the_service_naming_it(variable: str) -> None:
    with pytest.raises(SettingsError, match=variable):
        load_settings(environ={variable: "enabled"})


@pytest.mark.parametrize("variable, value", [
    ("DLOCK_FAULTS", "After-Lunch=crash"), ("DLOCK_FAULTS", "after_lock=explode"),
    ("DLOCK_FAULTS", "after_lock=sleep:soon"), ("LOCK_PREFIX", "{shop}"),
    ("LOG_FORMAT", "xml")])
def test_a_bad_fault_spec_prefix_or_log_format_is_a_settings_error(variable: str,
                                                                   value: str) -> None:
    with pytest.raises(SettingsError, match=variable):
        load_settings(environ={"DLOCK_TEST_MODE": "1", variable: value})


def test_the_log_format_is_read_with_the_rest() -> None:
    assert load_settings(environ={}).log_format == ""  # json, or text in a terminal
    assert load_settings(environ={"LOG_FORMAT": "text"}).log_format == "text"


def test_a_service_reads_its_own_settings_and_the_kits_not_the_others() -> None:
    environ = {"ORDERS_PORT": "4000", "INVOICES_PORT": "4001", "LOCK_TTL_MS": "2500"}
    orders = load_settings(environ=environ, kind=OrderSettings)
    invoices = load_settings(environ=environ, kind=InvoiceSettings)
    assert (orders.orders_port, orders.lock_ttl_ms) == (4000, 2500)
    assert (invoices.invoices_port, invoices.lock_ttl_ms) == (4001, 2500)
    assert not hasattr(invoices, "invoices_url") and not hasattr(orders, "invoices_port")
    assert not hasattr(load_settings(environ=environ), "repair_interval_ms")


def _page_variables() -> set[str]:
    page = configuration_page.PAGE.read_text(encoding="utf-8")
    names: set[str] = set()
    for row in page.splitlines():
        if row.startswith("| `"):
            names.update(re.findall(r"`([A-Z][A-Z0-9_]+)`", row.split("|")[1]))
    return names


def _read_variables() -> set[str]:
    return {item.variable for item in declared(StackSettings)}


def test_the_configuration_page_lists_every_variable_the_settings_read() -> None:
    assert _page_variables() == _read_variables()


def test_the_configuration_page_tables_are_made_from_the_declaration() -> None:
    page = configuration_page.PAGE.read_text(encoding="utf-8")
    assert configuration_page.render(page) == page, (
        "run python -m devstack.configuration_page")
    assert all(table in page for table in configuration_page.tables().values())
    stale = page.replace("| `LOCK_TTL_MS` | 10000 |", "| `LOCK_TTL_MS` | 5000 |")
    assert stale != page and configuration_page.render(stale) == page


@pytest.mark.parametrize("name, kind", [("orders", OrderSettings),
                                        ("invoices", InvoiceSettings)])
def test_help_lists_every_variable_the_service_reads(
        name: str, kind: type[Settings], capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit):
        exit_if_help(name, kind, ["--help"])
    rows = re.findall(r"^([A-Z][A-Z0-9_]+) +\S", capsys.readouterr().out, re.MULTILINE)
    assert set(rows) == {item.variable for item in declared(kind)}
