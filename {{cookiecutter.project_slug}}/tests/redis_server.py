"""A real Redis for the tests: Debian's redis-server on 127.0.0.1, or the one
``REDIS_URL`` names (CI's Redis service container).

redis-server cannot bind port 0 and report the port it got (``--port 0`` turns
TCP off), and the tests need TCP: the app's ``redis://`` URL, as in production,
and the ``limits`` library's own storage. So it is told a port from
``unreserved_ports()`` (which no ``bind(0)`` or ``connect()`` elsewhere is
handed, so the port stays free while a test has Redis stopped) and, should
another server already hold that one, started again on the next.
"""

import os
import shutil
import signal
import subprocess
import time
from pathlib import Path
from types import TracebackType

import pytest
from redis import Redis
from redis.exceptions import RedisError

from live_server import ADDRESS_IN_USE, PORT_ATTEMPTS, unreserved_ports

MISSING = "REDIS-SERVER NOT FOUND: the Redis tests did NOT run (apt-get install redis-server)"


def find_redis() -> str:
    """The redis-server binary, or skip (fail where REQUIRE_REDIS is set) saying so loudly."""
    found = os.environ.get("REDIS_SERVER") or shutil.which("redis-server")
    if found:
        return found
    if os.environ.get("REQUIRE_REDIS"):
        pytest.fail(MISSING)
    pytest.skip(MISSING)


class RedisServer:
    """One redis-server process: no persistence, so a restart loses every key.

    With ``url`` it starts nothing and uses that Redis (flushed on entry and exit),
    which the tests can read and write but not stop, freeze or restart.
    """

    def __init__(self, workdir: Path, url: str | None = None) -> None:
        self.workdir = workdir
        self.external = url is not None
        self.port = 0  # chosen on the first start, kept for restarts
        self.process: subprocess.Popen[bytes] | None = None
        self.url = ""  # ours: known once it has a port
        self.client = Redis(socket_timeout=2, decode_responses=True)  # connects on first use
        if url is not None:
            self._use(url)

    def _use(self, url: str) -> None:
        self.url = url
        self.client.close()
        self.client = Redis.from_url(url, socket_timeout=2, decode_responses=True)

    def __enter__(self) -> "RedisServer":
        if self.external:
            self.client.flushdb()
            return self
        redis_server = find_redis()
        for port in unreserved_ports():
            self.port = port
            self._use(f"redis://127.0.0.1:{port}/0")
            if self._start(redis_server):
                return self
        raise RuntimeError(f"redis-server found no free port in {PORT_ATTEMPTS} attempts")

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        if self.external:
            self.client.flushdb()
        self.stop()
        self.client.close()

    def start(self) -> None:
        """Start again on the port of the first start (the app's URL names it)."""
        assert not self.external, "an external Redis cannot be started"
        if not self._start(find_redis()):
            raise RuntimeError(f"port {self.port} was taken while redis-server was stopped")

    def _start(self, redis_server: str) -> bool:
        """Start on ``self.port`` and wait until it answers; False if that port was taken."""
        command = [
            redis_server, "--port", str(self.port), "--bind", "127.0.0.1",
            "--save", "", "--appendonly", "no", "--dir", str(self.workdir),
        ]  # fmt: skip
        log_path = self.workdir / "redis.log"
        with log_path.open("ab") as log:
            logged = log.tell()  # this start's lines come after
            self.process = subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT)
        deadline = time.monotonic() + 10
        while not self.ping():
            if self.process.poll() is not None or time.monotonic() > deadline:
                self.stop()
                with log_path.open("rb") as log:
                    log.seek(logged)
                    lines = log.read().decode(errors="replace")
                if ADDRESS_IN_USE in lines.lower():
                    return False
                raise RuntimeError(f"redis-server did not start: {lines}")
            time.sleep(0.02)
        return True

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.resume()  # a stopped process cannot act on SIGTERM
            self.process.terminate()
            self.process.wait(timeout=10)

    def restart(self) -> None:
        """Stop and start again on the same port, with no keys (as after a crash)."""
        self.stop()
        self.start()

    def pause(self) -> None:
        """Freeze Redis: connections open, nothing answers (a hung server)."""
        assert self.process is not None
        self.process.send_signal(signal.SIGSTOP)

    def resume(self) -> None:
        assert self.process is not None
        self.process.send_signal(signal.SIGCONT)

    def ping(self) -> bool:
        try:
            return bool(self.client.ping())
        except (OSError, RedisError):
            return False

    def lease_counts(self, prefix: str = "ws") -> dict[str, int]:
        """Open connections per identity, as the leases in Redis count them (expired ones not)."""
        now = self.client.time()
        now_seconds = now[0] + now[1] / 1_000_000
        return {
            key.removeprefix(f"{prefix}:leases:").removeprefix("{").removesuffix("}"): count
            for key in self.client.scan_iter(f"{prefix}:leases:*")
            if (count := self.client.zcount(key, f"({now_seconds}", "+inf"))
        }
