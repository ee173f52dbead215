"""The limits in a Sentinel-managed Redis (``redis+sentinel://``), across a failover.

One master, one replica and three sentinels, started here; two app servers (the
recommended launcher) share them. The master is SIGKILLed: the app keeps
answering (never a 5xx, never a hang over a second), admissions use Redis again
once a replica is promoted, without a restart, and the cap holds again within
one lease interval (each server renews its leases on the new master).
"""

import asyncio
import time
from collections.abc import Iterator

import pytest
from redis import Redis

from cases import BEARER
from credentials import IDENTITY
from live_server import LiveServer
from redis_fleet import SentinelSet
from test_redis import (
    ADMITTED,
    CAP,
    REACHABLE,
    SECOND,
    STRATEGIES,
    UNREACHABLE,
    Outcome,
    assert_clean_log,
    attempt,
    closing,
    eventually,
    limits_env,
    running,
    ticket,
)

FAILOVER_SECONDS = 30  # generous: detection takes 1 s, the election a few more
# Longer than a failover takes, as in production (30 s by default): the leases
# held across it survive on the promoted replica, renewed there once it answers.
LEASE = 10


def live_leases(master: Redis, identity: str = IDENTITY) -> int:
    seconds, micros = master.time()
    return master.zcount("ws:leases:{" + identity + "}", f"({seconds + micros / 1e6}", "+inf")


@pytest.fixture(scope="module")
def sentinels(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SentinelSet]:
    with SentinelSet(tmp_path_factory.mktemp("sentinel")) as fleet:
        yield fleet


@pytest.fixture(scope="module")
def pair(
    sentinels: SentinelSet, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[tuple[LiveServer, LiveServer]]:
    env = limits_env(sentinels.url) | {"WS_CONNECTION_LEASE_SECONDS": str(LEASE)}
    a, b = (LiveServer(tmp_path_factory.mktemp(name), launcher=True, env=env) for name in "ab")
    with running(a, b):
        yield a, b
    for server in (a, b):
        assert_clean_log(server)


async def test_the_cap_holds_before_and_after_the_master_is_killed(
    sentinels: SentinelSet, pair: tuple[LiveServer, LiveServer]
) -> None:
    a, b = pair
    strategy = STRATEGIES[0]
    async with closing() as held:
        # Before: one identity's cap across both servers, tickets across both.
        held += [await attempt(a, strategy, BEARER), await attempt(b, strategy, BEARER)]
        assert [outcome.answer for outcome in held] == [ADMITTED] * CAP
        for server in (a, b):
            refused = await attempt(server, strategy, BEARER, source="127.0.0.20")
            assert refused.answer == (429, "too_many_connections")
        issued = await ticket(a, SECOND)
        held.append(await attempt(b, STRATEGIES[-1], query=f"?ticket={issued}"))
        assert held[-1].answer == ADMITTED
        with sentinels.client() as master:
            assert live_leases(master) == CAP
        old_master = sentinels.master_port()
        logs = {server: len(server.log) for server in (a, b)}

        assert sentinels.master is not None
        sentinels.master.kill()
        killed = time.monotonic()
        # During the failover: new sessions on both servers, each from an address of
        # its own (the rate limit is not what is tested here), until Redis counts
        # again; every one answered, and quickly.
        during: list[Outcome] = []
        promoted_after = None
        number = 0
        while time.monotonic() - killed < FAILOVER_SECONDS:
            number += 1
            server = (a, b)[number % 2]
            source = f"127.0.{1 + number // 250}.{1 + number % 250}"
            outcome = await attempt(server, strategy, SECOND, source=source)
            during.append(outcome)
            assert outcome.answer == ADMITTED, outcome
            assert outcome.ws is not None
            await outcome.ws.close()
            if promoted_after is None and sentinels.master_port() not in (None, old_master):
                promoted_after = time.monotonic() - killed
            if promoted_after is not None and all(
                server.log[logs[server] :].count(REACHABLE) for server in (a, b)
            ):
                break
            await asyncio.sleep(0.02)
        back_after = time.monotonic() - killed
        slowest = max(during, key=lambda outcome: outcome.seconds)
        print(
            f"\nfailover: replica promoted {promoted_after:.2f} s after the SIGKILL, "
            f"both servers on it after {back_after:.2f} s; {len(during)} sessions meanwhile, "
            f"slowest admission {slowest.seconds * 1000:.0f} ms"
        )
        assert promoted_after is not None, "no replica was promoted"
        assert slowest.seconds < 1
        for server in (a, b):
            since = server.log[logs[server] :]
            assert since.count(UNREACHABLE) == 1, since  # the breaker logs once
            assert since.count(REACHABLE) == 1, since

        # After: the leases held all along count on the new master (replicated, and
        # renewed there within a lease interval), so the cap holds on both servers.
        with sentinels.client() as master:
            await eventually(lambda: live_leases(master) == CAP, timeout=LEASE)
        print(f"cap converged {time.monotonic() - killed:.2f} s after the SIGKILL")
        for server in (a, b):
            refused = await attempt(server, strategy, BEARER, source="127.0.0.21")
            assert refused.answer == (429, "too_many_connections")
        issued = await ticket(b, SECOND)
        held.append(await attempt(a, STRATEGIES[-1], query=f"?ticket={issued}"))
        assert held[-1].answer == ADMITTED
    with sentinels.client() as master:
        await eventually(lambda: not master.keys("ws:leases:*"), timeout=1)
