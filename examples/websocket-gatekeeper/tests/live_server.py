"""Run the app in a real uvicorn process on 127.0.0.1 for wire-level tests."""

import os
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path
from types import TracebackType

from cases import SETTINGS_ENV

PACKAGE = "websocket_gatekeeper"

# Every WebSocket implementation uvicorn ships; the contract must hold on each.
WS_IMPLEMENTATIONS = ["wsproto", "websockets-sansio", "websockets"]


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class LiveServer:
    def __init__(
        self,
        workdir: Path,
        ws: str = "wsproto",  # ignored with launcher=True, which always uses wsproto
        app: str = "websocket_gatekeeper.main:app",
        env: dict[str, str] | None = None,
        extra_args: tuple[str, ...] = (),
        launcher: bool = False,
        command: list[str] | None = None,
    ) -> None:
        self.workdir = workdir  # also the cwd, so no developer .env is read
        self.ws = ws
        self.app = app
        self.env = {**os.environ, **SETTINGS_ENV, **(env or {})}
        self.extra_args = extra_args
        self.launcher = launcher  # serve with the `python -m` launcher instead
        self.command = command  # or any other command; "{port}" is replaced by the port
        self.port = free_port()
        self.host = "127.0.0.1"
        self.log_path = workdir / f"uvicorn-{ws}.log"
        self.process: subprocess.Popen[bytes] | None = None

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
        if self.command is not None:
            command = [part.replace("{port}", str(self.port)) for part in self.command]
        elif self.launcher:  # the recommended configuration, as the README runs it
            command = [sys.executable, "-m", PACKAGE, "--host", self.host, "--port", str(self.port)]
        else:
            command = [
                sys.executable, "-m", "uvicorn", self.app,
                "--host", self.host, "--port", str(self.port), "--ws", self.ws,
                "--app-dir", str(Path(__file__).parent), *self.extra_args,
            ]  # fmt: skip
        with self.log_path.open("wb") as log:
            self.process = subprocess.Popen(
                command, cwd=self.workdir, env=self.env, stdout=log, stderr=subprocess.STDOUT
            )
        self._wait_until_ready()
        return self

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
            if self.get("/health")[0] == 200:
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
