"""The limits in a Redis Cluster (``redis+cluster://``): three masters started here
(``redis-server --cluster-enabled yes`` and ``redis-cli --cluster create``), two app
servers sharing them. The rate limit, the cap and tickets behave as on one node.

Every script's keys share one hash tag (an address's or an identity's), so each
runs on one node; an address's rate and an identity's leases live on different
nodes, and an admission asks both at once.
"""

import asyncio
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager

import pytest
from limits import parse_many
from starlette.types import Scope

from {{ cookiecutter.package_name }}.admission import Admission
from {{ cookiecutter.package_name }}.auth import CredentialVerifier
from {{ cookiecutter.package_name }}.rejections import Rejection
from {{ cookiecutter.package_name }}.requirements import GUARDED
from {{ cookiecutter.package_name }}.settings import Settings
from {{ cookiecutter.package_name }}.store_redis import RedisStore

from cases import BEARER
from credentials import IDENTITY, SECOND_IDENTITY
from live_server import LiveServer
from redis_fleet import RedisClusterSet
from test_redis import (
    ADMITTED,
    CAP,
    RATE,
    SECOND,
    STRATEGIES,
    RoundTrips,
    assert_clean_log,
    attempt,
    closing,
    eventually,
    handshake,
    limits_env,
    running,
    ticket,
)


@pytest.fixture(scope="module")
def cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RedisClusterSet]:
    with RedisClusterSet(tmp_path_factory.mktemp("cluster")) as fleet:
        yield fleet


@pytest.fixture(scope="module")
def pair(
    cluster: RedisClusterSet, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[tuple[LiveServer, LiveServer]]:
    env = limits_env(cluster.url)
    a, b = (LiveServer(tmp_path_factory.mktemp(name), launcher=True, env=env) for name in "ab")
    with running(a, b):
        yield a, b
    for server in (a, b):
        assert_clean_log(server)


@pytest.fixture(autouse=True)
def empty(cluster: RedisClusterSet) -> Iterator[None]:
    cluster.flush()
    yield
    asyncio.run(eventually(lambda: not cluster.lease_counts(), timeout=1))


def test_the_keys_of_one_script_share_a_node_and_the_set_uses_all_three(
    cluster: RedisClusterSet,
) -> None:
    limits = ("LIMITER/handshakes/127.0.0.1/20/1/minute", "LIMITER/x/50/1/second")
    rate_nodes = {cluster.node_of("ws:rate:{handshakes/127.0.0.1}:" + key) for key in limits}
    assert len(rate_nodes) == 1
    spread = {cluster.node_of("ws:leases:{" + name + "}") for name in map(str, range(30))}
    assert len(spread) == 3


@pytest.mark.parametrize("strategy", STRATEGIES)
async def test_the_cap_holds_across_servers(
    cluster: RedisClusterSet, pair: tuple[LiveServer, LiveServer], strategy: str
) -> None:
    a, b = pair
    async with closing() as held:
        held += [await attempt(a, strategy, BEARER), await attempt(b, strategy, BEARER)]
        assert [outcome.answer for outcome in held] == [ADMITTED] * CAP
        assert cluster.lease_counts() == {IDENTITY: CAP}
        for server in (a, b):
            for other in STRATEGIES:
                refused = await attempt(server, other, BEARER)
                assert refused.answer == (429, "too_many_connections")
        held.append(await attempt(b, strategy, SECOND))
        assert held[-1].answer == ADMITTED
        assert held[0].ws is not None
        await held[0].ws.close()  # a clean close frees the slot at once

        async def admitted_on_b() -> bool:
            outcome = await attempt(b, strategy, BEARER)
            held.append(outcome)
            return outcome.answer == ADMITTED

        assert await eventually(admitted_on_b, timeout=0.5) < 0.5


async def test_concurrent_handshakes_for_the_last_slot_admit_one(
    pair: tuple[LiveServer, LiveServer],
) -> None:
    a, b = pair
    for round_number in range(3):
        async with closing() as outcomes:
            outcomes.append(await attempt(a, STRATEGIES[0], BEARER))
            racers = [
                attempt(server, strategy, BEARER, source=f"127.0.0.{10 + round_number}")
                for server in (a, b)
                for strategy in STRATEGIES
                for _ in range(8 // len(STRATEGIES))
            ]
            outcomes += await asyncio.gather(*racers)
            answers = [outcome.answer for outcome in outcomes[1:]]
            assert answers.count(ADMITTED) == 1, answers


async def test_the_rate_per_address_is_shared(pair: tuple[LiveServer, LiveServer]) -> None:
    a, b = pair
    here = "127.0.0.2"
    for number in range(RATE):
        server, strategy = (a, b)[number % 2], STRATEGIES[number % len(STRATEGIES)]
        outcome = await attempt(server, strategy, SECOND, source=here)
        assert outcome.answer == ADMITTED
        assert outcome.ws is not None
        await outcome.ws.close()
    for server in (a, b):
        for strategy in STRATEGIES:
            refused = await attempt(server, strategy, SECOND, source=here)
            assert refused.answer == (429, "rate_limited")
    async with closing() as outcomes:
        outcomes.append(await attempt(b, STRATEGIES[0], SECOND, source="127.0.0.3"))
        assert outcomes[-1].answer == ADMITTED


async def test_a_ticket_from_one_server_is_redeemed_once_on_another(
    pair: tuple[LiveServer, LiveServer],
) -> None:
    a, b = pair
    here = "127.0.0.6"
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


@asynccontextmanager
async def admission_on_cluster(
    cluster: RedisClusterSet, settings: Settings
) -> AsyncIterator[Admission]:
    settings = settings.model_copy(
        update={"handshake_rate_limit": f"{RATE}/minute", "max_connections_per_identity": CAP}
    )
    store = RedisStore(cluster.url, lease_seconds=30)
    await store.start()
    admission = Admission(settings, CredentialVerifier(settings), store)
    await admission.verifier.start()
    try:
        yield admission
    finally:
        await admission.verifier.close()
        await store.close()


async def test_an_admission_waits_for_one_round_trip_to_two_nodes(
    cluster: RedisClusterSet, settings: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The address's rate and the identity's lease are on different nodes here:
    asked at once, so the handshake waits for one round trip, two requests."""
    leases_on = cluster.node_of("ws:leases:{" + IDENTITY + "}")
    address = next(
        address
        for address in (f"203.0.113.{number}" for number in range(40, 80))
        if cluster.node_of("ws:rate:{handshakes/" + address + "}:x") != leases_on
    )
    async with admission_on_cluster(cluster, settings) as admission:
        store = admission.store
        assert isinstance(store, RedisStore)
        warm_up = await store.admit(tuple(parse_many("1/second")), ("warm-up",), "nobody", 1)
        assert warm_up[1] is not None
        await store.release_lease(warm_up[1])
        await eventually(lambda: not cluster.lease_counts(), timeout=1)
        trips = RoundTrips(monkeypatch)

        def scope(headers: dict[str, str]) -> Scope:
            return handshake(headers, address)

        admitted, sent = await trips.of(admission.admit(scope(BEARER), GUARDED, "test"))
        assert not isinstance(admitted, Rejection)
        assert sent == 2  # at once: the rate on one node, the lease on another
        refused, sent = await trips.of(admission.admit(scope({}), GUARDED, "test"))
        assert isinstance(refused, Rejection)
        assert sent == 1
        _, sent = await trips.of(admission.release(admitted))
        assert sent == 0
        await eventually(lambda: not cluster.lease_counts().get(IDENTITY), timeout=1)
