"""Run the app in a real uvicorn process on 127.0.0.1 for wire-level tests.

No test ever picks a port and hands it to a server later: another process could
take it in between. uvicorn binds port 0 itself and the port it got is read back
from the process's listening socket. Only settings that must name the port
before the start (``fixed_port``) use a port chosen up front, and a start that
finds it taken tries another one.
"""

import os
import random
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from types import TracebackType

import psutil

from cases import SETTINGS_ENV

PACKAGE = "{{ cookiecutter.package_name }}"

# Every WebSocket implementation uvicorn ships; the contract must hold on each.
WS_IMPLEMENTATIONS = ["wsproto", "websockets-sansio", "websockets"]


PORT_ATTEMPTS = 20  # ports tried by a server that cannot bind port 0 itself
ADDRESS_IN_USE = "address already in use"  # how uvicorn, nginx and redis-server say so


def unreserved_ports() -> Iterator[int]:
    """Ports for a server that must be told its port: random, below the kernel's ephemeral range.

    ``bind(("...", 0))`` and ``connect()`` are never handed a port from there, so
    no other process gets one by chance, not even while our server is down for a
    restart. A port some other server holds makes the start fail with "address
    already in use", and the caller tries the next one (``PORT_ATTEMPTS``).
    """
    try:
        ephemeral = int(Path("/proc/sys/net/ipv4/ip_local_port_range").read_text().split()[0])
    except (OSError, ValueError, IndexError):
        ephemeral = 32768  # Linux's default
    low = max(ephemeral // 2, 1025)
    choose = random.SystemRandom()
    for _ in range(PORT_ATTEMPTS):
        yield choose.randrange(low, max(ephemeral, low + 1))


def listening_port(pid: int) -> int | None:
    """The TCP port the process (or a child of it) listens on; None while there is none."""
    try:
        process = psutil.Process(pid)
        for candidate in (process, *process.children(recursive=True)):
            for connection in candidate.net_connections(kind="tcp"):
                if connection.status == psutil.CONN_LISTEN:
                    return connection.laddr.port
    except psutil.Error:  # gone, or a child that just exited
        return None
    return None


class LiveServer:
    def __init__(
        self,
        workdir: Path,
        ws: str = "wsproto",  # ignored with launcher=True, which always uses wsproto
        app: str = "{{ cookiecutter.package_name }}.main:app",
        env: dict[str, str] | None = None,
        extra_args: tuple[str, ...] = (),
        launcher: bool = False,
        command: list[str] | None = None,
        fixed_port: bool = False,
    ) -> None:
        self.workdir = workdir  # also the cwd, so no developer .env is read
        self.ws = ws
        self.app = app
        # "{port}" in a value is replaced by the server's port (needs fixed_port).
        self.env = {**os.environ, **SETTINGS_ENV, **(env or {})}
        self.extra_args = extra_args
        self.launcher = launcher  # serve with the `python -m` launcher instead
        self.command = command  # or any other command; "{port}" is replaced by the port
        # True: a port chosen before the start, for settings that must name it.
        # False (the default): the server binds port 0 and reports what it got.
        self.fixed_port = fixed_port
        self._port: int | None = None
        self.host = "127.0.0.1"
        self.log_path = workdir / f"uvicorn-{ws}.log"
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def port(self) -> int:
        assert self._port is not None, "the port is known once the server has started"
        return self._port

    @property
    def http_url(self) -> str:
        return f"http://{self.host}:{self.port}"

    @property
    def ws_url(self) -> str:
        return f"ws://{self.host}:{self.port}"

    @property
    def pid(self) -> int:
        assert self.process is not None, "the server is not running"
        return self.process.pid

    @property
    def log(self) -> str:
        return self.log_path.read_text(errors="replace")

    def __enter__(self) -> "LiveServer":
        if not self.fixed_port:
            self._start(0)
            return self
        for port in unreserved_ports():
            if self._start(port):
                return self
        raise RuntimeError(f"no free port in {PORT_ATTEMPTS} attempts:\n{self.log}")

    def _start(self, port: int) -> bool:
        """Start on ``port`` (0: any) and wait until ready; False if that port was taken."""
        self._port = port or None
        if self.command is not None:
            command = [part.replace("{port}", str(port)) for part in self.command]
        elif self.launcher:  # the recommended configuration, as the README runs it
            command = [sys.executable, "-m", PACKAGE, "--host", self.host, "--port", str(port)]
        else:
            command = [
                sys.executable, "-m", "uvicorn", self.app,
                "--host", self.host, "--port", str(port), "--ws", self.ws,
                "--app-dir", str(Path(__file__).parent), *self.extra_args,
            ]  # fmt: skip
        env = {name: value.replace("{port}", str(port)) for name, value in self.env.items()}
        with self.log_path.open("wb") as log:
            self.process = subprocess.Popen(
                command, cwd=self.workdir, env=env, stdout=log, stderr=subprocess.STDOUT
            )
        try:
            self._wait_until_ready()
        except RuntimeError:
            if port and self.process.poll() is not None and ADDRESS_IN_USE in self.log.lower():
                return False
            raise
        return True

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.stop()

    def stop(self) -> None:
        if self.process is None or self.process.poll() is not None:
            return
        self.process.terminate()
        try:
            self.process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()

    def _wait_until_ready(self, timeout: float = 20.0) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            assert self.process is not None
            if self.process.poll() is not None:
                raise RuntimeError(f"uvicorn exited with {self.process.returncode}:\n{self.log}")
            if self._port is None:
                self._port = listening_port(self.process.pid)
            if self._port is not None and self.get("/health")[0] == 200:
                return
            time.sleep(0.05)
        raise RuntimeError(f"uvicorn did not become ready in {timeout}s:\n{self.log}")

    def get(self, path: str) -> tuple[int, bytes]:
        """A plain HTTP GET; (0, b"") while nothing is listening yet."""
        try:
            with urllib.request.urlopen(self.http_url + path, timeout=2) as response:  # noqa: S310
                return response.status, response.read()
        except OSError:
            return 0, b""

    def error_lines(self) -> list[str]:
        """ERROR/CRITICAL lines and tracebacks in the server log."""
        return [
            line
            for line in self.log.splitlines()
            if line.startswith(("ERROR", "CRITICAL", "Traceback"))
        ]

    def assert_no_unexpected_errors(self) -> None:
        errors = self.error_lines()
        assert not errors, f"uvicorn --ws {self.ws} logged errors:\n{self.log}"
