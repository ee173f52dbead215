"""Limits shared through a real Redis by real servers (the recommended launcher,
with ``WS_LIMITS_STORAGE_URL=redis://...``), and what happens when Redis fails.

Two app processes stand for two workers or two hosts behind a load balancer: the
connection cap, the handshake rate and tickets must hold across them. The fault
tests stop, freeze and restart a redis-server of their own.
"""

import asyncio
import json
import math
import os
import signal
import time
import urllib.error
import urllib.request
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import ExitStack, asynccontextmanager, contextmanager, suppress
from dataclasses import dataclass
from typing import Any, TypeVar

import pytest
from redis.asyncio.connection import AbstractConnection
from starlette.requests import HTTPConnection
from starlette.types import Scope
from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed, InvalidStatus
from websockets.sync.client import connect as connect_sync

from {{ cookiecutter.package_name }}.admission import (
    Admission,
    Admitted,
)
from {{ cookiecutter.package_name }}.auth import CredentialVerifier
from {{ cookiecutter.package_name }}.rejections import Rejection
from {{ cookiecutter.package_name }}.requirements import GUARDED
from {{ cookiecutter.package_name }}.settings import Settings
from {{ cookiecutter.package_name }}.store_redis import RedisStore

from cases import BEARER, ECHO_ENDPOINTS
from credentials import IDENTITY, SECOND_IDENTITY, SECOND_TOKEN
from live_server import LiveServer
from redis_server import RedisServer, find_redis

LEASE_SECONDS = 3  # the shortest lease the settings allow: renewed every second
RATE = 20  # handshakes per minute and client address
CAP = 2  # open connections per identity
STRATEGIES = list(ECHO_ENDPOINTS)
SECOND = {"authorization": f"Bearer {SECOND_TOKEN}"}
# Log lines that betray a bug even though they are not at ERROR.
LEFTOVERS = ("Task was destroyed", "was never awaited", "Unclosed", "Task exception")
T = TypeVar("T")
CONNECTION_GREETING = {b"HELLO", b"CLIENT", b"AUTH", b"SELECT", b"READONLY"}


def limits_env(redis_url: str) -> dict[str, str]:
    return {
        "WS_LIMITS_STORAGE_URL": redis_url,
        "WS_HANDSHAKE_RATE_LIMIT": f"{RATE}/minute",
        "WS_MAX_CONNECTIONS_PER_IDENTITY": str(CAP),
        "WS_CONNECTION_LEASE_SECONDS": str(LEASE_SECONDS),
    }


def assert_clean_log(server: LiveServer) -> None:
    server.assert_no_unexpected_errors()
    assert not [line for line in server.log.splitlines() if line.startswith(LEFTOVERS)]


@dataclass
class Outcome:
    status: int  # 101 when admitted; else the HTTP status, or the close code - 4000
    code: str  # "admitted", or the refusal's code
    seconds: float  # until the answer was known
    ws: ClientConnection | None = None  # the open connection, when admitted
    http: bool = False  # refused with an HTTP response (else after accept, with a close)
    retry_after: str | None = None

    @property
    def answer(self) -> tuple[int, str]:
        return self.status, self.code


ADMITTED = (101, "admitted")


async def attempt(
    server: LiveServer,
    strategy: str,
    headers: dict[str, str] | None = None,
    query: str = "",
    source: str = "127.0.0.1",
) -> Outcome:
    """One handshake on ``strategy``'s echo endpoint; an admitted connection stays open."""
    started = time.perf_counter()
    url = server.ws_url + ECHO_ENDPOINTS[strategy] + query
    try:
        ws = await connect(url, additional_headers=headers, local_addr=(source, 0), open_timeout=5)
    except InvalidStatus as exc:
        response = exc.response
        code = json.loads(response.body)["code"]
        seconds = time.perf_counter() - started
        retry_after = response.headers.get("retry-after")
        return Outcome(response.status_code, code, seconds, http=True, retry_after=retry_after)
    with suppress(ConnectionClosed):  # refused after accept: the server may have closed already
        await ws.send("ping")
    first = await asyncio.wait_for(ws.recv(), 5)  # what arrived before a close is still read
    if first == "ping":
        return Outcome(*ADMITTED, time.perf_counter() - started, ws)
    error = json.loads(first)["error"]
    with pytest.raises(ConnectionClosed) as closed:
        await asyncio.wait_for(ws.recv(), 5)
    assert closed.value.rcvd is not None
    assert closed.value.rcvd.reason == error
    return Outcome(closed.value.rcvd.code - 4000, error, time.perf_counter() - started)


@asynccontextmanager
async def closing() -> AsyncIterator[list[Outcome]]:
    """Outcomes whose admitted connections are all closed when the block ends."""
    outcomes: list[Outcome] = []
    try:
        yield outcomes
    finally:
        await close_all(outcomes)


async def close_all(outcomes: list[Outcome]) -> None:
    await asyncio.gather(*(o.ws.close() for o in outcomes if o.ws is not None))


def post_ticket(server: LiveServer, headers: dict[str, str]) -> tuple[int, dict[str, str]]:
    url = server.http_url + "/ws/tickets"
    request = urllib.request.Request(url, headers=headers, method="POST")  # noqa: S310 (http://)
    try:
        with urllib.request.urlopen(request, timeout=5) as response:  # noqa: S310
            return response.status, json.loads(response.read())
    except urllib.error.HTTPError as error:
        return error.code, json.loads(error.read())


async def ticket(server: LiveServer, headers: dict[str, str] = BEARER) -> str:
    status, body = await asyncio.to_thread(post_ticket, server, headers)
    assert status == 201, body
    return body["ticket"]


async def eventually(
    condition: Callable[[], object], timeout: float, interval: float = 0.05
) -> float:
    """Seconds until ``condition()`` (sync or async) held; fails after ``timeout``."""
    started = time.monotonic()
    while True:
        result = condition()
        if asyncio.iscoroutine(result):
            result = await result
        if result:
            return time.monotonic() - started
        assert time.monotonic() - started < timeout, f"not within {timeout}s"
        await asyncio.sleep(interval)


# -- servers sharing one Redis -------------------------------------------------------------

Trio = tuple[LiveServer, LiveServer, LiveServer]


@pytest.fixture(scope="module")
def shared_redis(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RedisServer]:
    """REDIS_URL's Redis (CI's service container), or a redis-server of our own."""
    url = os.environ.get("REDIS_URL")
    if url is None:
        find_redis()
    with RedisServer(tmp_path_factory.mktemp("redis"), url) as redis:
        yield redis


@contextmanager
def running(*servers: LiveServer) -> Iterator[None]:
    """Start servers side by side: each takes a second or two to import the app."""
    with ExitStack() as stack, ThreadPoolExecutor() as pool:
        list(pool.map(stack.enter_context, servers))
        yield


@pytest.fixture(scope="module")
def servers(shared_redis: RedisServer, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Trio]:
    """A and B, as two workers or hosts would; and a third that one test kills."""
    env = limits_env(shared_redis.url)
    trio = [LiveServer(tmp_path_factory.mktemp(name), launcher=True, env=env) for name in "abc"]
    with running(*trio):
        yield trio[0], trio[1], trio[2]
        # A server stopped cleanly (SIGTERM) gives its slots back at once, not after the lease.
        shared_redis.client.flushdb()
        url = trio[0].ws_url + ECHO_ENDPOINTS[STRATEGIES[0]]
        with connect_sync(url, additional_headers=BEARER) as ws:
            ws.send("admitted?")
            assert ws.recv(timeout=5) == "admitted?"
            assert shared_redis.lease_counts() == {IDENTITY: 1}
            trio[0].stop()
        assert shared_redis.lease_counts() == {}
    for server in trio:
        assert_clean_log(server)


@pytest.fixture(autouse=True)
def no_leases_left(request: pytest.FixtureRequest) -> Iterator[None]:
    """Every test starts on an empty Redis and leaves no lease behind."""
    if "servers" not in request.fixturenames:
        yield
        return
    redis: RedisServer = request.getfixturevalue("shared_redis")
    redis.client.flushdb()
    yield
    asyncio.run(eventually(lambda: not redis.lease_counts(), timeout=1))


@pytest.mark.parametrize("strategy", STRATEGIES)
async def test_the_cap_holds_across_servers_and_a_clean_close_gives_back_at_once(
    servers: Trio, shared_redis: RedisServer, strategy: str
) -> None:
    a, b, _ = servers
    async with closing() as held:
        held += [await attempt(a, strategy, BEARER), await attempt(b, strategy, BEARER)]
        assert [outcome.answer for outcome in held] == [ADMITTED] * CAP
        assert shared_redis.lease_counts() == {IDENTITY: CAP}
        for server in (a, b):
            for other in STRATEGIES:  # one identity, one count, on every endpoint
                refused = await attempt(server, other, BEARER)
                assert refused.answer == (429, "too_many_connections")
        held.append(await attempt(b, strategy, SECOND))
        assert held[-1].answer == ADMITTED  # bob has slots of his own
        # A clean close on A frees a slot for B at once, not after the lease.
        assert held[0].ws is not None
        await held[0].ws.close()

        async def admitted_on_b() -> bool:
            outcome = await attempt(b, strategy, BEARER)
            held.append(outcome)
            return outcome.answer == ADMITTED

        assert await eventually(admitted_on_b, timeout=0.5) < 0.5
    await eventually(lambda: not shared_redis.client.keys("ws:leases:*"), timeout=1)


async def test_a_vanished_client_gives_its_slot_back(
    servers: Trio, shared_redis: RedisServer
) -> None:
    a, _, _ = servers
    for strategy in STRATEGIES:
        outcome = await attempt(a, strategy, BEARER)
        assert outcome.ws is not None
        assert shared_redis.lease_counts() == {IDENTITY: 1}
        outcome.ws.transport.abort()  # no close frame: the connection just drops
        await eventually(lambda: not shared_redis.lease_counts(), timeout=1)


async def test_concurrent_handshakes_for_the_last_slot_admit_one(
    servers: Trio,
) -> None:
    a, b, _ = servers
    for round_number in range(3):
        async with closing() as outcomes:
            outcomes.append(await attempt(a, STRATEGIES[0], BEARER))  # one slot left
            racers = [
                attempt(server, strategy, BEARER, source=f"127.0.0.{10 + round_number}")
                for server in (a, b)
                for strategy in STRATEGIES
                for _ in range(8 // len(STRATEGIES))
            ]
            outcomes += await asyncio.gather(*racers)
            answers = [outcome.answer for outcome in outcomes[1:]]
            assert answers.count(ADMITTED) == 1, answers
            assert answers.count((429, "too_many_connections")) == len(answers) - 1


# -- the store itself, in process, on the shared Redis --------------------------------------


@asynccontextmanager
async def store_on(redis: RedisServer, prefix: str) -> AsyncIterator[RedisStore]:
    store = RedisStore(redis.url, lease_seconds=30, prefix=prefix)
    await store.start()
    try:
        yield store
    finally:
        await store.close()


class RoundTrips:
    """Requests the app's redis-py clients send, counted where they go out on a
    connection: a script, a command or a whole pipeline is one round trip. A new
    pooled connection's own greeting (HELLO, CLIENT SETINFO, ...) is not counted:
    it happens once per connection, not per handshake."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch) -> None:
        self.count = 0
        send = AbstractConnection.send_packed_command

        async def counting(connection: AbstractConnection, command: Any, **options: Any) -> None:
            packed = b"".join(command) if isinstance(command, list) else bytes(command)
            name = packed.split(b"\r\n", 3)[2].upper()  # *<n>, $<length>, then the name
            if name not in CONNECTION_GREETING:
                self.count += 1
            await send(connection, command, **options)

        monkeypatch.setattr(AbstractConnection, "send_packed_command", counting)

    async def of(self, call: Awaitable[T]) -> tuple[T, int]:
        """The result of ``call`` and the round trips it waited for."""
        before = self.count
        result = await call
        return result, self.count - before


async def test_the_rate_script_decides_like_limits_own_redis_storage(
    shared_redis: RedisServer,
) -> None:
    from limits import parse
    from limits.aio.storage import RedisStorage as LimitsRedisStorage
    from limits.aio.strategies import SlidingWindowCounterRateLimiter

    storage = LimitsRedisStorage(
        f"async+{shared_redis.url}", implementation="redispy", key_prefix="theirs"
    )
    theirs = SlidingWindowCounterRateLimiter(storage)
    item = parse("5/minute")
    # Both sides must count in the same minute: on a busy machine the 16 hits could
    # otherwise straddle a window boundary and the two sides see different windows.
    into_the_minute = time.time() % 60
    if into_the_minute > 50:
        await asyncio.sleep(60.1 - into_the_minute)
    async with store_on(shared_redis, "ours") as ours:
        ours_waits = [await ours.hit((item,), "203.0.113.5") for _ in range(8)]
        theirs_allowed = [await theirs.hit(item, "203.0.113.5") for _ in range(8)]
        stats = await theirs.get_window_stats(item, "203.0.113.5")
    assert [wait == 0 for wait in ours_waits] == theirs_allowed == [True] * 5 + [False] * 3
    assert abs(ours_waits[-1] - math.ceil(stats.reset_time - time.time())) <= 1
    # The same keys, with the same counts and lifetimes, as limits keeps.
    client = shared_redis.client
    for suffix in ("", "/-1"):
        theirs_key = "theirs:{" + item.key_for("203.0.113.5") + "}" + suffix
        # Ours: one hash tag per address (every limit on one Cluster node), then limits' key.
        ours_key = "ours:rate:{203.0.113.5}:" + item.key_for("203.0.113.5") + suffix
        assert client.get(ours_key) == client.get(theirs_key)
        assert abs(client.pttl(ours_key) - client.pttl(theirs_key)) < 1000


async def test_every_limit_of_a_handshake_is_one_round_trip(
    shared_redis: RedisServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    from limits import parse_many

    limits = tuple(parse_many("3/second;4/minute"))
    async with store_on(shared_redis, "trips") as store:
        await store.hit(limits, "warm-up")  # loads the scripts into Redis once
        trips = RoundTrips(monkeypatch)
        waits = [await trips.of(store.hit(limits, "198.51.100.20")) for _ in range(5)]
        assert [wait for wait, _ in waits[:3]] == [0, 0, 0]
        assert waits[3][0] >= 1  # the per-second limit
        assert [sent for _, sent in waits[:4]] == [1] * 4  # refused or not: one script
        assert waits[4] == (waits[3][0], 0)  # still refused: known here, Redis not asked


def admission_on(store: RedisStore, settings: Settings, **changes: object) -> Admission:
    settings = settings.model_copy(
        update={"handshake_rate_limit": f"{RATE}/minute", "max_connections_per_identity": CAP}
        | changes
    )
    return Admission(settings, CredentialVerifier(settings), store)


def handshake(headers: dict[str, str], address: str = "203.0.113.30", query: str = "") -> Scope:
    return {
        "type": "websocket",
        "path": "/ws/echo",
        "query_string": query.encode(),
        "headers": [(name.encode(), value.encode()) for name, value in headers.items()],
        "subprotocols": [],
        "client": (address, 50000),
    }


async def test_one_round_trip_per_admission_and_none_on_close(
    shared_redis: RedisServer, settings: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    async with store_on(shared_redis, "ws") as store:
        admission = admission_on(store, settings)
        await admission.verifier.start()
        await store.hit(admission._rate_limits, "warm-up")  # loads the scripts
        _, warm_up = await store.admit(admission._rate_limits, ("warm-up",), "nobody", 1)
        assert warm_up is not None
        await store.release_lease(warm_up)
        await eventually(lambda: not shared_redis.lease_counts(), timeout=1)
        trips = RoundTrips(monkeypatch)
        counts: dict[str, list[int]] = {}

        async def admit(label: str, scope: Scope, expected: str) -> Admitted | Rejection:
            outcome, sent = await trips.of(admission.admit(scope, GUARDED, "test"))
            code = outcome.code if isinstance(outcome, Rejection) else "admitted"
            assert code == expected
            counts.setdefault(label, []).append(sent)
            return outcome

        held = [await admit("admitted", handshake(BEARER), "admitted") for _ in range(CAP)]
        await admit("at the cap", handshake(BEARER), "too_many_connections")
        await admit("no credential", handshake({}), "missing_token")
        await admit(
            "wrong credential", handshake({"authorization": "Bearer nope"}), "invalid_token"
        )
        for admitted in held:
            assert isinstance(admitted, Admitted)
            _, sent = await trips.of(admission.release(admitted))
            counts.setdefault("release (awaited)", []).append(sent)
        await eventually(lambda: not shared_redis.lease_counts(), timeout=1)
        issued = await admission.issue_ticket(HTTPConnection(handshake(SECOND)))
        assert not isinstance(issued, Rejection)
        by_ticket = await admit("ticket", handshake({}, query=f"ticket={issued[0]}"), "admitted")
        await admission.release(by_ticket)  # type: ignore[arg-type]
        flood = "203.0.113.31"
        for _ in range(RATE):
            admitted = await admit("admitted", handshake(SECOND, flood), "admitted")
            await admission.release(admitted)  # type: ignore[arg-type]
            await eventually(lambda: not shared_redis.lease_counts(), timeout=1)
        await admit("first rate refusal", handshake(SECOND, flood), "rate_limited")
        for headers in (SECOND, {}, {"authorization": "Bearer nope"}):
            await admit("known rate refusal", handshake(headers, flood), "rate_limited")
        print("round trips per path:", {label: sorted(set(sent)) for label, sent in counts.items()})
        assert set(counts["admitted"]) == {1}
        assert set(counts["release (awaited)"]) == {0}
        for refusal in ("at the cap", "no credential", "wrong credential", "first rate refusal"):
            assert counts[refusal] == [1], refusal
        assert set(counts["known rate refusal"]) == {0}
        assert counts["ticket"] == [2]  # GETDEL, then rate and lease
        await eventually(lambda: not shared_redis.lease_counts(), timeout=1)
        await admission.verifier.close()


async def test_the_rate_per_address_is_shared_and_no_header_escapes_it(
    servers: Trio, shared_redis: RedisServer
) -> None:
    a, b, _ = servers
    here = "127.0.0.2"
    for number in range(RATE):  # alternately on A and B, on every endpoint
        server, strategy = (a, b)[number % 2], STRATEGIES[number % len(STRATEGIES)]
        outcome = await attempt(server, strategy, SECOND, source=here)
        assert outcome.answer == ADMITTED
        assert outcome.ws is not None
        await outcome.ws.close()
    for server in (a, b):
        for strategy in STRATEGIES:
            refused = await attempt(server, strategy, SECOND, source=here)
            assert refused.answer == (429, "rate_limited")
            if refused.http:  # a close frame has no headers
                assert refused.retry_after is not None
                assert 1 <= int(refused.retry_after) <= 60
            # A forged X-Forwarded-For from a peer that is not a trusted proxy changes nothing.
            forged = await attempt(
                server, strategy, {**SECOND, "x-forwarded-for": "203.0.113.99"}, source=here
            )
            assert forged.answer == (429, "rate_limited")
    async with closing() as outcomes:
        # Another address is not limited.
        outcomes.append(await attempt(a, STRATEGIES[0], SECOND, source="127.0.0.3"))
        # Behind a trusted proxy (127.0.0.1, uvicorn's default FORWARDED_ALLOW_IPS), the
        # client is the address the proxy forwards: each has its own budget.
        proxied = {**SECOND, "x-forwarded-for": "198.51.100.7"}
        for _ in range(RATE):
            outcome = await attempt(b, STRATEGIES[-1], proxied)
            assert outcome.answer == ADMITTED
            assert outcome.ws is not None
            await outcome.ws.close()
        assert (await attempt(a, STRATEGIES[0], proxied)).answer == (429, "rate_limited")
        # B's releases go out a few milliseconds after each close (batched).
        await eventually(lambda: shared_redis.lease_counts() == {SECOND_IDENTITY: 1}, timeout=1)
        other = {**SECOND, "x-forwarded-for": "198.51.100.8"}
        outcomes.append(await attempt(a, STRATEGIES[0], other))
        assert [outcome.answer for outcome in outcomes] == [ADMITTED, ADMITTED]


async def test_a_ticket_from_one_server_is_redeemed_once_on_another(
    servers: Trio,
) -> None:
    a, b, _ = servers
    here = "127.0.0.6"  # the tickets are asked for from 127.0.0.1, used from here
    async with closing() as outcomes:
        for strategy in STRATEGIES:
            issued = await ticket(a, SECOND)
            outcomes.append(await attempt(b, strategy, query=f"?ticket={issued}", source=here))
            assert outcomes[-1].answer == ADMITTED
            for server in (a, b):
                reused = await attempt(server, strategy, query=f"?ticket={issued}", source=here)
                assert reused.answer == (403, "invalid_ticket")
    await asyncio.sleep(0.2)  # the log line follows the admission
    assert f"as {SECOND_IDENTITY}" in b.log
    for _ in range(5):  # two concurrent uses of one ticket, on two servers: one wins
        issued = await ticket(b, SECOND)
        async with closing() as both:
            both += await asyncio.gather(
                attempt(a, STRATEGIES[0], query=f"?ticket={issued}", source=here),
                attempt(b, STRATEGIES[-1], query=f"?ticket={issued}", source=here),
            )
            answers = sorted(outcome.answer for outcome in both)
            assert answers == [ADMITTED, (403, "invalid_ticket")]


async def test_a_killed_server_gives_its_slots_back_within_the_lease(
    servers: Trio, shared_redis: RedisServer
) -> None:
    a, _, doomed = servers
    async with closing() as held:
        held += [await attempt(doomed, strategy, BEARER) for strategy in STRATEGIES * CAP][:CAP]
        assert [outcome.answer for outcome in held] == [ADMITTED] * CAP
        assert_clean_log(doomed)
        os.kill(doomed.pid, signal.SIGKILL)  # no shutdown, no release: only the lease ends it
        killed = time.monotonic()
        await asyncio.to_thread(doomed.stop)  # reaps it
    # Renewed every LEASE_SECONDS / 3, so the leases outlive the kill by 2 to 3 seconds.
    await asyncio.sleep(1.5)
    here = "127.0.0.4"
    refused = await attempt(a, STRATEGIES[0], BEARER, source=here)
    assert refused.answer == (429, "too_many_connections")
    assert shared_redis.lease_counts() == {IDENTITY: CAP}
    async with closing() as outcomes:

        async def admitted() -> bool:
            outcomes.append(await attempt(a, STRATEGIES[0], BEARER, source=here))
            return outcomes[-1].answer == ADMITTED

        await eventually(admitted, timeout=LEASE_SECONDS, interval=0.2)
        assert time.monotonic() - killed <= LEASE_SECONDS + 0.5


# -- Redis down, hung, restarted -----------------------------------------------------------

UNREACHABLE = "Redis store unreachable"
REACHABLE = "Redis store reachable again"


class LogSince:
    """A server's log from one moment on."""

    def __init__(self, server: LiveServer) -> None:
        self.server = server
        self.start = len(server.log)

    def count(self, text: str) -> int:
        return self.server.log[self.start :].count(text)


@pytest.fixture(scope="module")
def own_redis(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RedisServer]:
    """A redis-server of our own (never REDIS_URL's): these tests stop, freeze and restart it."""
    find_redis()
    with RedisServer(tmp_path_factory.mktemp("own-redis")) as redis:
        yield redis


@pytest.fixture(scope="module")
def lonely(
    own_redis: RedisServer, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[LiveServer]:
    """One app server on that Redis."""
    env = limits_env(own_redis.url)
    with LiveServer(tmp_path_factory.mktemp("lonely"), launcher=True, env=env) as server:
        yield server
    assert_clean_log(server)


@pytest.fixture
def outage_log(lonely: LiveServer, own_redis: RedisServer) -> Iterator[LogSince]:
    """The server's log from now on; Redis is running again when the test ends."""
    yield LogSince(lonely)
    if own_redis.process is None or own_redis.process.poll() is not None:
        own_redis.start()
    own_redis.resume()


async def check_outage(server: LiveServer, tickets: list[str]) -> None:
    """The documented policy while the store is unusable, on every endpoint: answered
    within a second, rates and caps fail open, tickets fail closed."""
    async with closing() as outcomes:
        # More handshakes than the address may make, all held open, far over the cap.
        for number in range(RATE + 1):
            strategy = STRATEGIES[number % len(STRATEGIES)]
            outcomes.append(await attempt(server, strategy, BEARER, source="127.0.0.9"))
            assert outcomes[-1].answer == ADMITTED
        for strategy in STRATEGIES:
            outcomes.append(await attempt(server, strategy, query=f"?ticket={tickets.pop()}"))
            assert outcomes[-1].answer == (503, "store_unavailable")
            outcomes.append(await attempt(server, strategy))  # the usual refusals still work
            assert outcomes[-1].answer == (401, "missing_token")
        assert max(outcome.seconds for outcome in outcomes) < 1, outcomes
        started = time.perf_counter()
        status, body = await asyncio.to_thread(post_ticket, server, BEARER)
        assert (status, body["code"]) == (503, "store_unavailable")
        assert time.perf_counter() - started < 1


async def check_recovery(server: LiveServer, redis: RedisServer) -> None:
    async with closing() as outcomes:

        async def limits_work_again() -> bool:
            outcomes.append(await attempt(server, STRATEGIES[0], SECOND))
            return bool(redis.lease_counts().get(SECOND_IDENTITY))

        await eventually(limits_work_again, timeout=3, interval=0.2)
        issued = await ticket(server)
        outcomes.append(await attempt(server, STRATEGIES[-1], query=f"?ticket={issued}"))
        assert outcomes[-1].answer == ADMITTED


async def test_redis_stopped_then_restarted(
    lonely: LiveServer, own_redis: RedisServer, outage_log: LogSince
) -> None:
    async with closing() as held:
        held.append(await attempt(lonely, STRATEGIES[0], BEARER))
        tickets = [await ticket(lonely) for _ in STRATEGIES]
        own_redis.stop()
        await check_outage(lonely, tickets)
        await asyncio.sleep(1.2)  # past the 1 s pause: the store is asked again, fails again
        await check_outage(lonely, ["never-issued-ticket"] * len(STRATEGIES))
        assert outage_log.count(UNREACHABLE) == 1, lonely.log

        own_redis.start()  # empty: every key is lost
        await check_recovery(lonely, own_redis)
        assert outage_log.count(REACHABLE) == 1
        # The connection held all along gets its lease back with the next renewal.
        await eventually(
            lambda: own_redis.lease_counts().get(IDENTITY) == 1,
            timeout=LEASE_SECONDS / 3 + 0.5,
        )

        # A restart between two calls goes unnoticed: the pooled connections are
        # dead, and redis-py reconnects on the spot (no 503, no WARNING).
        own_redis.restart()
        issued = await ticket(lonely)
        held.append(await attempt(lonely, STRATEGIES[-1], query=f"?ticket={issued}"))
        assert held[-1].answer == ADMITTED
        await eventually(
            lambda: own_redis.lease_counts().get(IDENTITY) == 2,
            timeout=LEASE_SECONDS / 3 + 0.5,
        )
    await eventually(lambda: not own_redis.lease_counts(), timeout=1)
    assert outage_log.count(UNREACHABLE) == 1
    assert outage_log.count(REACHABLE) == 1


async def test_redis_hung(lonely: LiveServer, own_redis: RedisServer, outage_log: LogSince) -> None:
    tickets = [await ticket(lonely) for _ in STRATEGIES]
    own_redis.pause()
    try:
        await check_outage(lonely, tickets)
        assert outage_log.count(UNREACHABLE) == 1, lonely.log
    finally:
        own_redis.resume()
    await check_recovery(lonely, own_redis)
    assert outage_log.count(REACHABLE) == 1
    # Commands that timed out may still run once Redis wakes up: a lease taken that
    # way is nobody's, is never renewed, and expires with its lease time.
    await eventually(lambda: not own_redis.lease_counts(), timeout=LEASE_SECONDS + 1)
