"""A server run as a child process, controlled by its pid."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
from types import TracebackType
from typing import IO, Any, Sequence

import psutil

from devstack.ports import free_port, is_listening


_echo_lock = threading.Lock()


def _echo(stream: IO[bytes], prefix: str) -> None:
    for line in stream:
        text = line.decode(errors="replace").rstrip("\n")
        with _echo_lock:
            sys.stdout.write(f"{prefix} | {text}\n")
            sys.stdout.flush()


def cpu_seconds(pid: int) -> float:
    """User and system CPU time a process has used; 0 once it is gone."""
    try:
        times = psutil.Process(pid).cpu_times()
    except psutil.Error:
        return 0.0
    return float(times.user + times.system)


class ServerStartError(RuntimeError):
    """The server did not accept connections in time; the message carries its log tail."""


class ServerProcess:
    """Start, stop, kill, pause and restart one server on a fixed loopback port.

    Subclasses say which command to run (`command()`) and how to tell it is
    ready (`is_ready()`, by default: the port accepts connections). The port is
    chosen once, so `restart()` brings the server back where clients expect it.
    """

    name = "server"
    start_timeout = 30.0
    # When set, the output goes to this process's stdout, each line after
    # "<prefix> | " (how `make run` interleaves its four servers' logs).
    echo_prefix: str | None = None

    def __init__(self, port: int | None = None, host: str = "127.0.0.1",
                 log_path: str | None = None) -> None:
        self.host = host
        self.port = port or free_port(host)
        self.log_path = log_path
        self._proc: subprocess.Popen[bytes] | None = None
        self._log: IO[bytes] | None = None

    def command(self) -> Sequence[str]:
        raise NotImplementedError

    def is_ready(self) -> bool:
        return is_listening(self.host, self.port)

    def environment(self) -> dict[str, str] | None:
        """The child's environment; None inherits this process's."""
        return None

    @property
    def pid(self) -> int:
        if self._proc is None:
            raise RuntimeError(f"{self.name} is not running")
        return self._proc.pid

    @property
    def running(self) -> bool:
        return self._proc is not None and self._proc.poll() is None

    def start(self) -> None:
        if self.running:
            return
        if self.log_path:
            self._log = open(self.log_path, "ab")
        stdout: Any = self._log if self._log is not None else subprocess.DEVNULL
        if self.echo_prefix is not None:
            stdout = subprocess.PIPE
        # A session of its own: a Ctrl-C meant for `make run` or pytest does
        # not reach the server; we stop it ourselves, in order.
        self._proc = subprocess.Popen(list(self.command()), stdout=stdout,
                                      stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                                      env=self.environment(), start_new_session=True)
        if self.echo_prefix is not None:
            threading.Thread(target=_echo, args=(self._proc.stdout, self.echo_prefix),
                             name=f"echo-{self.name}", daemon=True).start()
        deadline = time.monotonic() + self.start_timeout
        while time.monotonic() < deadline:
            if self._proc.poll() is not None:
                raise ServerStartError(f"{self.name} exited with {self._proc.returncode}"
                                       f"{self._log_tail()}")
            if self.is_ready():
                return
            time.sleep(0.05)
        self.stop()
        raise ServerStartError(f"{self.name} not ready on port {self.port} "
                               f"after {self.start_timeout}s{self._log_tail()}")

    def stop(self, timeout: float = 10.0) -> None:
        """SIGTERM, then SIGKILL if it has not gone within `timeout` seconds."""
        if self._proc is None:
            return
        if self._proc.poll() is None:
            self.resume()  # a stopped process cannot act on SIGTERM
            self._proc.terminate()
            try:
                self._proc.wait(timeout)
            except subprocess.TimeoutExpired:
                self._proc.kill()
                self._proc.wait()
        self._close_log()
        self._proc = None

    def kill(self) -> None:
        """SIGKILL: no shutdown work, as in a crash."""
        if self._proc is not None and self._proc.poll() is None:
            self._proc.kill()
            self._proc.wait()
        self._close_log()
        self._proc = None

    def pause(self) -> None:
        """SIGSTOP: the process keeps its sockets but answers nothing."""
        os.kill(self.pid, signal.SIGSTOP)

    def resume(self) -> None:
        if self.running:
            os.kill(self.pid, signal.SIGCONT)

    @property
    def frozen(self) -> bool:
        """True while the process is stopped by SIGSTOP (or a tracer)."""
        try:
            return psutil.Process(self.pid).status() in (psutil.STATUS_STOPPED,
                                                         psutil.STATUS_TRACING_STOP)
        except (psutil.Error, RuntimeError):
            return False

    def terminate(self) -> None:
        """SIGTERM, without waiting: the process shuts down in its own time."""
        if self.running:
            self._proc.terminate()  # type: ignore[union-attr]

    def wait(self, timeout: float) -> int | None:
        """Wait up to `timeout` seconds for the process to exit; its exit code, or None."""
        if self._proc is None:
            return None
        try:
            return self._proc.wait(timeout)
        except subprocess.TimeoutExpired:
            return None

    def restart(self, kill: bool = False) -> None:
        self.kill() if kill else self.stop()
        self.start()

    def _close_log(self) -> None:
        if self._log is not None:
            self._log.close()
            self._log = None

    def _log_tail(self) -> str:
        if not self.log_path:
            return ""
        try:
            with open(self.log_path, "rb") as log:
                return ":\n" + log.read()[-2000:].decode(errors="replace")
        except OSError:
            return ""

    def __enter__(self) -> "ServerProcess":
        self.start()
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.stop()
