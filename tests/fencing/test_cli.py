"""`python -m fencing hold|inspect`, run as a person would: a subprocess on a real Redis."""

from __future__ import annotations

import asyncio
import signal
import subprocess
import sys
from typing import Any, Iterator

import pytest
import redis.asyncio as aredis

from fencing import FencedLock

# Generous bounds on waiting for a process, never a measure of speed.
EXIT_TIMEOUT = 30


def fencing_cli(redis_url: str, prefix: str, *args: str) -> list[str]:
    return [sys.executable, "-m", "fencing", "--redis-url", redis_url, "--prefix", prefix,
            *args]


def run(*command: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(command, capture_output=True, text=True, timeout=EXIT_TIMEOUT)


def holder(redis_url: str, prefix: str, resource: str) -> int | None:
    async def ask() -> int | None:
        client = aredis.Redis.from_url(redis_url, socket_timeout=2)
        try:
            return await FencedLock(client, prefix=prefix).holder(resource)
        finally:
            await client.aclose()
    return asyncio.run(ask())


def inspect(redis_url: str, prefix: str, resource: str) -> dict[str, str]:
    done = run(*fencing_cli(redis_url, prefix, "inspect", resource))
    assert done.returncode == 0, done.stderr
    return dict(line.split(": ", 1) for line in done.stdout.splitlines())


class Holder:
    """A `hold` process. `first_line()` waits for the first line of its output: the token,
    once it holds the lease; "" if it exits without one."""

    def __init__(self, command: list[str]) -> None:
        self.proc = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                     text=True)

    def first_line(self) -> str:
        assert self.proc.stdout is not None
        return self.proc.stdout.readline()

    def token(self) -> int:
        line = self.first_line()
        assert line.strip().isdigit(), f"not a token: {line!r}"
        return int(line)

    def finish(self) -> tuple[int, str, str]:
        out, err = self.proc.communicate(timeout=EXIT_TIMEOUT)
        return self.proc.returncode, out, err

    def kill(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
        self.proc.communicate(timeout=EXIT_TIMEOUT)


@pytest.fixture
def hold(redis_url: str, unique_name: str) -> Iterator[Any]:
    """`hold(*args)`: start `python -m fencing hold ...`; killed at teardown if still running."""
    started: list[Holder] = []

    def start(*args: str) -> Holder:
        started.append(Holder(fencing_cli(redis_url, unique_name, "hold", *args)))
        return started[-1]

    yield start
    for process in started:
        process.kill()


@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGINT])
def test_the_printed_token_holds_every_resource_until_a_signal_releases_it(
        hold: Any, redis_url: str, unique_name: str, signum: int) -> None:
    holding = hold("order:1", "invoice:1", "--ttl-ms", "60000")
    token = holding.token()
    assert holder(redis_url, unique_name, "order:1") == token
    assert holder(redis_url, unique_name, "invoice:1") == token
    holding.proc.send_signal(signum)
    code, out, err = holding.finish()
    assert (code, out.splitlines()[-1], err) == (0, "released", "")
    assert holder(redis_url, unique_name, "order:1") is None
    assert holder(redis_url, unique_name, "invoice:1") is None


def test_the_lease_ends_when_its_ttl_has_passed(hold: Any, redis_url: str,
                                                unique_name: str) -> None:
    holding = hold("order:2", "--ttl-ms", "300")
    token = holding.token()
    code, _, err = holding.finish()
    assert (code, err) == (0, "")
    assert holder(redis_url, unique_name, "order:2") is None
    assert hold("order:2", "--ttl-ms", "300").token() > token


def test_a_held_resource_is_busy_for_a_second_hold(hold: Any) -> None:
    token = hold("order:3", "--ttl-ms", "60000").token()
    busy = hold("order:3", "invoice:3", "--ttl-ms", "60000")
    code, out, err = busy.finish()
    assert (code, out) == (1, "")
    assert f"order:3 by token {token}" in err and "Traceback" not in err


def test_inspect_tells_the_holder_its_time_left_and_who_waits(
        hold: Any, redis_url: str, unique_name: str) -> None:
    assert inspect(redis_url, unique_name, "order:4") == {
        "resource": "order:4", "token": "none", "remaining_ms": "0", "waiting": "0"}
    holding = hold("order:4", "--ttl-ms", "60000")
    token = holding.token()
    waiter = hold("order:4", "--wait", "20")     # prints its token once it holds the lease
    for _ in range(200):  # bounded: it joins the line within a moment of starting
        seen = inspect(redis_url, unique_name, "order:4")
        if seen["waiting"] == "1":
            break
    assert seen["token"] == str(token)
    assert 0 < int(seen["remaining_ms"]) <= 60_000
    assert seen["waiting"] == "1"
    holding.proc.send_signal(signal.SIGTERM)
    assert holding.finish()[0] == 0
    next_token = waiter.token()
    assert next_token > token
    assert inspect(redis_url, unique_name, "order:4")["token"] == str(next_token)
    assert inspect(redis_url, unique_name, "order:4")["waiting"] == "0"


def test_a_signal_ends_the_wait_in_line_and_takes_nothing(
        hold: Any, redis_url: str, unique_name: str) -> None:
    token = hold("order:7", "--ttl-ms", "60000").token()
    waiter = hold("order:7", "--wait", "600")    # far longer than EXIT_TIMEOUT
    for _ in range(200):  # bounded: it joins the line within a moment of starting
        if inspect(redis_url, unique_name, "order:7")["waiting"] == "1":
            break
    waiter.proc.send_signal(signal.SIGTERM)
    code, out, err = waiter.finish()
    assert (code, out) == (1, "")
    assert "stopped while waiting" in err and "Traceback" not in err
    assert inspect(redis_url, unique_name, "order:7") | {"remaining_ms": "-"} == {
        "resource": "order:7", "token": str(token), "remaining_ms": "-", "waiting": "0"}


@pytest.mark.parametrize("args", [
    [],
    ["hold"],
    ["hold", "order:5", "--ttl-ms", "0"],
    ["hold", "order:5", "--ttl-ms", "soon"],
    ["hold", "order:5", "--wait", "-1"],
    ["hold", "order:5", "order:5"],
    ["hold", "{shop-1}:order:5", "{shop-2}:invoice:5"],
    ["hold", ""],
    ["inspect"],
    ["inspect", "a", "b"],
    ["release", "order:5"],
    ["--prefix", "{p}", "inspect", "order:5"],
])
def test_bad_arguments_are_a_usage_error_without_a_traceback(
        redis_url: str, unique_name: str, args: list[str]) -> None:
    done = run(*fencing_cli(redis_url, unique_name, *args))
    assert (done.returncode, done.stdout) == (2, "")
    assert "usage: python -m fencing" in done.stderr and "Traceback" not in done.stderr
    assert holder(redis_url, unique_name, "order:5") is None


@pytest.mark.parametrize("args, mentions", [
    (["--help"], ["hold", "inspect", "--redis-url", "--prefix"]),
    (["hold", "--help"], ["RESOURCE", "--ttl-ms", "--wait", "SIGTERM"]),
    (["inspect", "--help"], ["RESOURCE"]),
])
def test_help_names_the_commands_and_options(args: list[str], mentions: list[str]) -> None:
    done = run(sys.executable, "-m", "fencing", *args)
    assert done.returncode == 0
    assert all(word in done.stdout for word in mentions), done.stdout


def test_an_unreachable_redis_is_reported_without_a_traceback(unique_name: str) -> None:
    unreachable = "redis://127.0.0.1:1/0"
    for args in (["hold", "order:6"], ["inspect", "order:6"]):
        done = run(*fencing_cli(unreachable, unique_name, *args))
        assert (done.returncode, done.stdout) == (1, "")
        assert "Redis unavailable" in done.stderr and "Traceback" not in done.stderr
