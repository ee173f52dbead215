"""A real Redis for the tests: Debian's redis-server on a free port of 127.0.0.1,
or the one ``REDIS_URL`` names (CI's Redis service container)."""

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

from live_server import free_port

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
        self.port = free_port()
        self.url = url or f"redis://127.0.0.1:{self.port}/0"
        self.process: subprocess.Popen[bytes] | None = None
        self.client = Redis.from_url(self.url, socket_timeout=2, decode_responses=True)

    def __enter__(self) -> "RedisServer":
        if self.external:
            self.client.flushdb()
        else:
            self.start()
        return self

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
        assert not self.external, "an external Redis cannot be started"
        command = [
            find_redis(), "--port", str(self.port), "--bind", "127.0.0.1",
            "--save", "", "--appendonly", "no", "--dir", str(self.workdir),
        ]  # fmt: skip
        log = (self.workdir / "redis.log").open("ab")
        self.process = subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT)
        deadline = time.monotonic() + 10
        while not self.ping():
            if self.process.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(
                    f"redis-server did not start: {(self.workdir / 'redis.log').read_text()}"
                )
            time.sleep(0.02)

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
            key.removeprefix(f"{prefix}:leases:"): count
            for key in self.client.scan_iter(f"{prefix}:leases:*")
            if (count := self.client.zcount(key, f"({now_seconds}", "+inf"))
        }
