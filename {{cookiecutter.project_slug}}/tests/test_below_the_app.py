"""Below the app, live under the ``python -m`` launcher: half-sent request heads,
a descriptor limit, and forwarded addresses from a trusted proxy.

The server gets its listening socket from the test (``--fd``), already bound to
port 0 on 127.0.0.1, and runs with ``RLIMIT_NOFILE`` 1,024 where the attack
needs it. The measured figures are printed (``pytest -s``) for the docs.
"""

import json
import os
import re
import resource
import secrets
import selectors
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager, suppress
from pathlib import Path

import psutil
import pytest
from websockets.exceptions import InvalidStatus
from websockets.sync.client import connect

from {{ cookiecutter.package_name }}.server import (
    SHED_LOG_INTERVAL,
)

from cases import BEARER, ECHO_PATHS, SETTINGS_ENV
from redis_server import RedisServer
from wire import exchange, handshake_request

PACKAGE = "{{ cookiecutter.package_name }}"
DESCRIPTOR_LIMIT = 1024
ATTACKERS = 1100
HEAD_TIMEOUT = 2.0  # WS_HANDSHAKE_TIMEOUT_SECONDS in these tests (default 10)
SLACK = 3.0  # on top of a deadline: the server checks 4 times per deadline


class Launched:
    """``python -m <package> --fd N``: the launcher on a socket this test bound."""

    def __init__(self, workdir: Path, env: dict[str, str], descriptors: int | None = None) -> None:
        self.listener = socket.socket()
        self.listener.bind(("127.0.0.1", 0))
        self.listener.listen(2048)
        self.port = self.listener.getsockname()[1]
        self.log_path = workdir / "launcher.log"
        fd = self.listener.fileno()
        with self.log_path.open("wb") as log:
            self.process = subprocess.Popen(
                [sys.executable, "-m", PACKAGE, "--fd", str(fd)],
                cwd=workdir,  # no developer .env there
                env={**os.environ, **SETTINGS_ENV, **env},
                pass_fds=[fd],
                preexec_fn=None if descriptors is None else limit_descriptors(descriptors),
                stdout=log,
                stderr=subprocess.STDOUT,
            )
        deadline = time.monotonic() + 30
        while get(self.port, "/health")[0] != 200:
            if self.process.poll() is not None or time.monotonic() > deadline:
                self.stop()
                raise RuntimeError(f"the launcher did not start:\n{self.log}")
            time.sleep(0.05)

    @property
    def log(self) -> str:
        return self.log_path.read_text(errors="replace")

    @property
    def rss_mb(self) -> float:
        return psutil.Process(self.process.pid).memory_info().rss / 2**20

    def descriptors(self) -> int:
        return psutil.Process(self.process.pid).num_fds()

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        self.listener.close()


@contextmanager
def launched(workdir: Path, descriptors: int | None = None, **env: str) -> Iterator[Launched]:
    server = Launched(workdir, env, descriptors)
    try:
        yield server
    finally:
        server.stop()
    errors = [line for line in server.log.splitlines() if line.startswith(("ERROR", "Traceback"))]
    assert not errors, server.log


def limit_descriptors(count: int) -> Callable[[], None]:
    def limit() -> None:
        resource.setrlimit(resource.RLIMIT_NOFILE, (count, count))

    return limit


def get(port: int, path: str, headers: dict[str, str] | None = None) -> tuple[int, bytes]:
    """A plain HTTP/1.1 GET on a new connection; (0, b"") when it fails."""
    lines = [f"GET {path} HTTP/1.1", f"Host: 127.0.0.1:{port}", "Connection: close"]
    lines += [f"{name}: {value}" for name, value in (headers or {}).items()]
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=2) as sock:
            sock.sendall(("\r\n".join(lines) + "\r\n\r\n").encode("latin-1"))
            data = b""
            while chunk := sock.recv(65536):
                data += chunk
    except OSError:
        return 0, b""
    head, _, body = data.partition(b"\r\n\r\n")
    return (int(head.split(b" ")[1]), body) if head else (0, b"")


def ensure_descriptors(count: int) -> None:
    """This test process holds the attacker's sockets: it needs more than 1,024."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft < count:
        if hard != resource.RLIM_INFINITY and hard < count:
            pytest.skip(f"the test needs {count} descriptors; `ulimit -Hn` is {hard}")
        resource.setrlimit(resource.RLIMIT_NOFILE, (count, hard))


def half_sent_heads(port: int, count: int) -> list[socket.socket]:
    """Upgrade requests that stop before the blank line that ends the head."""
    head = handshake_request(ECHO_PATHS[0], port=port)[:-2]
    sockets = []
    for _ in range(count):
        sock = socket.create_connection(("127.0.0.1", port), timeout=5)
        with suppress(OSError):  # already shed by the server: that is what it may do
            sock.sendall(head)
        sockets.append(sock)
    return sockets


def closed_by_server(sockets: list[socket.socket], deadline: float) -> list[float]:
    """When each socket saw the server close it (EOF or reset), until ``deadline``."""
    started = time.monotonic()
    closed_after = []
    with selectors.DefaultSelector() as selector:  # epoll: no limit of 1,024 descriptors
        for sock in sockets:
            selector.register(sock, selectors.EVENT_READ)
        while selector.get_map() and time.monotonic() < deadline:
            for key, _ in selector.select(timeout=0.1):
                sock = key.fileobj
                assert isinstance(sock, socket.socket)
                try:
                    data = sock.recv(4096)
                except OSError:
                    data = b""
                if not data:
                    closed_after.append(time.monotonic() - started)
                    selector.unregister(sock)
    return closed_after


def admitted(port: int) -> bool:
    with connect(f"ws://127.0.0.1:{port}{ECHO_PATHS[0]}", additional_headers=BEARER) as ws:
        ws.send("here")
        return ws.recv(timeout=5) == "here"


def test_half_sent_heads_do_not_take_the_server_down(tmp_path: Path) -> None:
    ensure_descriptors(ATTACKERS + 200)
    env = {"WS_HANDSHAKE_TIMEOUT_SECONDS": str(HEAD_TIMEOUT)}
    with launched(tmp_path, descriptors=DESCRIPTOR_LIMIT, **env) as server:
        rss_before, fds_before = server.rss_mb, server.descriptors()
        attack_started = time.monotonic()
        attackers = half_sent_heads(server.port, ATTACKERS)
        try:
            # While they hold on: a health check and an authenticated client are served.
            started = time.monotonic()
            assert get(server.port, "/health")[0] == 200
            health_seconds = time.monotonic() - started
            started = time.monotonic()
            assert admitted(server.port)
            handshake_seconds = time.monotonic() - started
            rss_during, fds_during = server.rss_mb, server.descriptors()
            # Every stalled socket is closed by the deadline (plus the check interval).
            closed = closed_by_server(attackers, attack_started + HEAD_TIMEOUT + SLACK + 30)
            all_closed = time.monotonic() - attack_started
        finally:
            for sock in attackers:
                sock.close()
        time.sleep(0.5)
        rss_after, fds_after = server.rss_mb, server.descriptors()
        # The first shed is logged at once, the rest at the end of the interval.
        deadline = time.monotonic() + SHED_LOG_INTERVAL + SLACK
        while sum(shed_counts(server.log)) < ATTACKERS and time.monotonic() < deadline:
            time.sleep(0.2)
        log = server.log
    print(
        f"\n{ATTACKERS} half-sent heads, RLIMIT_NOFILE {DESCRIPTOR_LIMIT}, "
        f"deadline {HEAD_TIMEOUT} s: "
        f"/health in {health_seconds * 1000:.0f} ms, authenticated handshake in "
        f"{handshake_seconds * 1000:.0f} ms; all {len(closed)} closed by the server within "
        f"{max(closed):.1f} s; descriptors {fds_before} -> {fds_during} -> {fds_after}; "
        f"RSS {rss_before:.1f} -> {rss_during:.1f} -> {rss_after:.1f} MB"
    )
    assert health_seconds < 1
    assert handshake_seconds < 1
    assert len(closed) == ATTACKERS
    assert all_closed < HEAD_TIMEOUT + SLACK + 5  # the sockets were opened over a few seconds
    assert fds_during < DESCRIPTOR_LIMIT
    assert fds_after <= fds_before + 5
    warnings = [line for line in log.splitlines() if SHED.search(line)]
    print("\n".join(warnings))
    assert all(line.startswith("WARNING") for line in warnings)
    assert 1 <= len(warnings) <= 3, log  # one line per interval, not one per socket
    # All of them, unless a burst of accepts once met the descriptor limit: the
    # event loop (libuv) then closes the excess itself, before the server sees it.
    assert ATTACKERS * 0.9 <= sum(shed_counts(log)) <= ATTACKERS, log
    assert "most from 127.0.0.1" in warnings[-1]


SHED = re.compile(r"shed (\d+) connections whose request .* and (\d+) at the bound")


def shed_counts(log: str) -> list[int]:
    return [int(count) for found in SHED.finditer(log) for count in found.groups()]


def test_a_slow_head_is_closed_and_a_prompt_one_is_not(tmp_path: Path) -> None:
    env = {"WS_HANDSHAKE_TIMEOUT_SECONDS": str(HEAD_TIMEOUT)}
    with launched(tmp_path, **env) as server:
        slow = socket.create_connection(("127.0.0.1", server.port))
        slow.sendall(b"GET /health HTTP/1.1\r\nHost: x\r\n")
        # A kept-alive connection: the next request has the same deadline.
        kept = socket.create_connection(("127.0.0.1", server.port))
        kept.sendall(b"GET /health HTTP/1.1\r\nHost: x\r\n\r\n")
        assert kept.recv(65536).startswith(b"HTTP/1.1 200")
        kept.sendall(b"GET /health HTTP/1.1\r\n")
        url = f"ws://127.0.0.1:{server.port}{ECHO_PATHS[0]}"
        with connect(url, additional_headers=BEARER) as ws:
            for _ in range(3):  # an open WebSocket is past its head: no deadline
                time.sleep(HEAD_TIMEOUT / 2 + 0.5)
                ws.send("still here")
                assert ws.recv(timeout=5) == "still here"
        started = time.monotonic()
        closed = closed_by_server([slow, kept], started + HEAD_TIMEOUT + SLACK)
        slow.close()
        kept.close()
    assert len(closed) == 2


def test_the_bound_answers_503_when_no_head_is_pending(tmp_path: Path) -> None:
    with launched(tmp_path, WS_MAX_OPEN_CONNECTIONS="3") as server:
        url = f"ws://127.0.0.1:{server.port}{ECHO_PATHS[0]}"
        with (
            connect(url, additional_headers=BEARER),
            connect(url, additional_headers=BEARER),
            connect(url, additional_headers=BEARER) as third,
        ):
            third.send("full")
            assert third.recv(timeout=5) == "full"
            for _ in range(3):
                with pytest.raises(InvalidStatus) as refused:
                    connect(url, additional_headers=BEARER, open_timeout=5)
                assert refused.value.response.status_code == 503
                assert refused.value.response.headers["retry-after"] == "1"
        # Room again once they have gone.
        deadline = time.monotonic() + 10
        while get(server.port, "/health")[0] != 200:
            assert time.monotonic() < deadline
            time.sleep(0.1)
        time.sleep(0.2)
        assert "at the bound of 3 open connections" in server.log


def test_a_bound_the_descriptor_limit_cannot_hold_refuses_to_start(tmp_path: Path) -> None:
    result = subprocess.run(
        [sys.executable, "-m", PACKAGE, "--port", "0"],
        cwd=tmp_path,
        env={**os.environ, **SETTINGS_ENV, "WS_MAX_OPEN_CONNECTIONS": "5000"},
        preexec_fn=limit_descriptors(DESCRIPTOR_LIMIT),
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
    )
    assert result.returncode != 0
    assert "WS_MAX_OPEN_CONNECTIONS=5000 needs more file descriptors" in result.stderr
    assert "Traceback" not in result.stderr


# -- forwarded addresses ---------------------------------------------------------------------

JUNK = {
    "text": "not-an-address",
    "oversized": "x" * 8000,
    "host-name": "proxy.example.com",
    "zone": "fe80::1%eth0",
    "padded": "001.002.003.004",
    "five-parts": "1.2.3.4.5",
}


def handshake_from(port: int, forwarded_for: str | None) -> str:
    """The refusal code of one handshake without a credential: ``missing_token``
    when the rate limit let it through, ``rate_limited`` when not."""
    headers = {} if forwarded_for is None else {"X-Forwarded-For": forwarded_for}
    request = handshake_request(ECHO_PATHS[0], headers, port=port)
    response = exchange(port, request, until_close_frame=True)
    if response.status == 101:  # refused after the accept: the close frame says why
        return response.frames[-1][1][2:].decode()
    return json.loads(response.body)["code"]


@pytest.mark.parametrize("junk", JUNK)
def test_junk_forwarded_for_shares_the_peers_budget(tmp_path: Path, junk: str) -> None:
    # 127.0.0.1 is a trusted proxy (FORWARDED_ALLOW_IPS' default): it may name clients.
    with launched(tmp_path, WS_HANDSHAKE_RATE_LIMIT="2/minute") as server:
        assert handshake_from(server.port, JUNK[junk]) == "missing_token"
        assert handshake_from(server.port, None) == "missing_token"  # the peer itself: same budget
        assert handshake_from(server.port, JUNK[junk]) == "rate_limited"
        assert handshake_from(server.port, None) == "rate_limited"
        # A valid address the proxy names has a budget of its own.
        assert handshake_from(server.port, "198.51.100.7") == "missing_token"
        assert handshake_from(server.port, "2001:db8::7") == "missing_token"
        assert handshake_from(server.port, "[2001:db8::8]:4711") == "missing_token"
        time.sleep(0.2)
        log = server.log
    assert JUNK[junk] not in log
    assert "from 127.0.0.1:" in log
    assert "from 198.51.100.7:" in log
    assert "from 2001:db8::7:" in log
    assert max(len(line) for line in log.splitlines()) < 400


def test_junk_forwarded_for_never_becomes_a_key(redis_server: RedisServer, tmp_path: Path) -> None:
    # 3,000 handshakes, each "from" 8 KB of random text: before, each became a
    # rate-limit key (in the process and in Redis) and an 8 KB log line.
    env = {"WS_LIMITS_STORAGE_URL": redis_server.url}
    with launched(tmp_path, **env) as server:
        handshake_from(server.port, None)  # the peer's own keys exist from here on
        rss_before, keys_before = server.rss_mb, redis_server.client.dbsize()
        memory_before = redis_server.client.info("memory")["used_memory"]
        for _ in range(3000):
            assert handshake_from(server.port, secrets.token_urlsafe(6000)) == "missing_token"
        rss_after, keys_after = server.rss_mb, redis_server.client.dbsize()
        memory_after = redis_server.client.info("memory")["used_memory"]
        keys = list(redis_server.client.scan_iter("*"))
        longest = max(len(line) for line in server.log.splitlines())
    print(
        f"\n3000 handshakes with 8 KB X-Forwarded-For junk: RSS {rss_before:.1f} -> "
        f"{rss_after:.1f} MB; Redis keys {keys_before} -> {keys_after}, memory "
        f"{memory_before / 2**20:.2f} -> {memory_after / 2**20:.2f} MB; longest log line {longest}"
    )
    # They all counted against the peer: its window's key and the previous one's.
    assert keys_after <= 2
    assert all("127.0.0.1" in key for key in keys), keys
    assert memory_after - memory_before < 2**20
    assert rss_after - rss_before < 10
    assert longest < 400


def test_only_a_trusted_proxy_names_the_client(tmp_path: Path) -> None:
    with launched(
        tmp_path, WS_HANDSHAKE_RATE_LIMIT="1/minute", FORWARDED_ALLOW_IPS="192.0.2.1"
    ) as server:
        assert handshake_from(server.port, "198.51.100.7") == "missing_token"
        # 127.0.0.1 is not trusted now: the header is ignored, the peer counted.
        assert handshake_from(server.port, "198.51.100.8") == "rate_limited"


def test_long_client_values_are_cut_in_every_log_line(tmp_path: Path) -> None:
    long_path = "/ws/" + "p" * 5000
    with launched(tmp_path) as server:
        assert get(server.port, long_path)[0] == 404
        exchange(server.port, handshake_request(long_path, port=server.port))
        long_query = ECHO_PATHS[0] + "?x=" + "q" * 5000
        exchange(server.port, handshake_request(long_query, port=server.port))
        time.sleep(0.2)
        log = server.log
    assert "p" * 190 in log  # the values are there, cut
    assert "p" * 201 not in log
    assert "q" * 201 not in log
    assert max(len(line) for line in log.splitlines()) < 400


def test_ready_is_200_with_the_memory_store(tmp_path: Path) -> None:
    with launched(tmp_path) as server:
        status, body = get(server.port, "/ready")
    assert status == 200
    assert json.loads(body) == {"status": "ready"}
