"""Keys from an identity provider's JWKS, served over real HTTP by ``jwks_server.py``.

In process (the verifier and its cache against the real provider) and end to end
(a real uvicorn with ``WS_JWKS_URL``): RS256 and ES256, the refetch policy under a
flood of random ``kid``s, shared downloads, key rotation, a provider that is
down, slow, or publishes keys this app must not use.
"""

import asyncio
import json
import logging
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import jwt
import pytest
from websockets.asyncio.client import connect
from websockets.exceptions import ConnectionClosed, InvalidStatus

from {{ cookiecutter.package_name }} import jwks
from {{ cookiecutter.package_name }}.auth import (
    AUTH_UNAVAILABLE,
    AuthSettings,
    CredentialVerifier,
)
from {{ cookiecutter.package_name }}.identity import Identity
from {{ cookiecutter.package_name }}.jwks import (
    JWKSCache,
    usable_keys,
)
from {{ cookiecutter.package_name }}.rejections import (
    INVALID_TOKEN,
    Rejection,
)

from cases import ECHO_PATHS
from jwks_server import JWKSServer, ec_key, new_key, rsa_key
from live_server import LiveServer

INTERVAL = 0.25  # WS_JWKS_REFETCH_SECONDS in these tests (exact in binary, for Clock)
PINNED = frozenset({"RS256", "ES256"})
ADMITTED = (101, "echo")


class Clock:
    """Stands in for ``time`` in jwks.py: a test moves it instead of sleeping, so the
    refetch interval is exact however slow the machine is."""

    def __init__(self) -> None:
        self.now = 1000.0

    def monotonic(self) -> float:
        return self.now


@pytest.fixture
def clock(monkeypatch: pytest.MonkeyPatch) -> Clock:
    clock = Clock()
    monkeypatch.setattr(jwks, "time", clock)
    return clock


@pytest.fixture
def provider(monkeypatch: pytest.MonkeyPatch) -> Iterator[JWKSServer]:
    monkeypatch.setenv("NO_PROXY", "127.0.0.1")  # a proxy from the environment must not answer
    with JWKSServer([rsa_key(), ec_key()]) as server:
        yield server


def verifier(provider: JWKSServer, refetch: float = INTERVAL) -> CredentialVerifier:
    return CredentialVerifier(AuthSettings(jwks_url=provider.url, jwks_refetch_seconds=refetch))


def random_kid_token() -> bytes:
    return rsa_key().token(kid=uuid.uuid4().hex).encode()


async def test_rs256_and_es256_tokens_are_admitted(provider: JWKSServer) -> None:
    checking = verifier(provider)
    await checking.start()
    rs = await checking.verify(rsa_key().token("alice", scope="read write").encode())
    es = await checking.verify(ec_key().token("bob", scp=["admin"]).encode())
    assert isinstance(rs, Identity)
    assert isinstance(es, Identity)
    assert (rs.user.identity, rs.auth.scopes) == ("alice", ["read", "write"])
    assert (es.user.identity, es.auth.scopes) == ("bob", ["admin"])
    assert provider.requests == 1  # fetched once, at start-up


async def test_a_flood_of_random_kids_costs_one_fetch_per_interval(
    provider: JWKSServer, clock: Clock
) -> None:
    checking = verifier(provider)
    await checking.start()
    clock.now += INTERVAL
    flood = await asyncio.gather(*(checking.verify(random_kid_token()) for _ in range(200)))
    assert flood == [INVALID_TOKEN] * 200
    assert provider.requests == 2  # start-up, and one refetch for the first unknown kid
    for _ in range(100):
        assert await checking.verify(random_kid_token()) == INVALID_TOKEN
    clock.now += INTERVAL / 2
    assert await checking.verify(random_kid_token()) == INVALID_TOKEN
    assert provider.requests == 2
    clock.now += INTERVAL / 2
    assert await checking.verify(random_kid_token()) == INVALID_TOKEN
    assert provider.requests == 3


async def test_rotation_new_kid_is_fetched_once_for_all_concurrent_handshakes(
    provider: JWKSServer,
) -> None:
    checking = verifier(provider, refetch=0)
    await checking.start()
    new = new_key("ES256")
    provider.publish(new)  # rotated: the old keys are gone
    provider.delay = 0.3  # the download is still running when the others arrive
    outcomes = await asyncio.gather(*(checking.verify(new.token().encode()) for _ in range(20)))
    assert all(isinstance(outcome, Identity) for outcome in outcomes)
    assert provider.requests == 2
    # A token signed with a retired key is refused once the rotation is known.
    provider.delay = 0
    assert await checking.verify(rsa_key().token().encode()) == INVALID_TOKEN


async def test_a_remembered_token_counts_only_while_its_key_is_published(
    provider: JWKSServer, clock: Clock
) -> None:
    checking = verifier(provider)
    await checking.start()
    retired, kept = rsa_key().token().encode(), ec_key().token().encode()
    assert isinstance(await checking.verify(retired), Identity)
    assert isinstance(await checking.verify(kept), Identity)  # both verified, remembered
    provider.publish(ec_key(), new_key("ES256"))  # the provider retires the RSA key
    clock.now += 301  # the keys go stale (WS_JWKS_CACHE_SECONDS): refreshed in the background
    assert isinstance(await checking.verify(retired), Identity)  # the last keys, meanwhile
    await asyncio.to_thread(provider.wait_for_requests, 2)
    deadline = time.monotonic() + 5
    while (outcome := await checking.verify(retired)) != INVALID_TOKEN:
        assert time.monotonic() < deadline, outcome
        await asyncio.sleep(0.01)
    assert isinstance(await checking.verify(kept), Identity)  # its key is still published
    assert provider.requests == 2


async def test_a_new_kid_right_after_a_fetch_waits_for_the_interval(
    provider: JWKSServer, clock: Clock
) -> None:
    checking = verifier(provider)
    await checking.start()
    new = new_key("ES256")
    provider.publish(rsa_key(), new)
    token = new.token().encode()
    assert await checking.verify(token) == INVALID_TOKEN  # fetched moments ago: not again
    assert provider.requests == 1
    clock.now += INTERVAL
    assert isinstance(await checking.verify(token), Identity)
    assert provider.requests == 2


async def test_provider_down_at_start_up_is_503_until_it_is_back(
    provider: JWKSServer, clock: Clock, caplog: pytest.LogCaptureFixture
) -> None:
    provider.stop()
    checking = verifier(provider)
    with caplog.at_level(logging.WARNING, logger=jwks.__name__):
        await checking.start()
    assert "could not fetch the JWKS" in caplog.text
    assert "refused with 503 auth_unavailable" in caplog.text
    token = rsa_key().token().encode()
    refused = await checking.verify(token)
    assert refused == AUTH_UNAVAILABLE
    assert (refused.status, dict(refused.headers)["retry-after"]) == (503, "5")
    provider.start()
    assert await checking.verify(token) == AUTH_UNAVAILABLE  # within the interval: no fetch
    clock.now += INTERVAL
    assert isinstance(await checking.verify(token), Identity)


async def test_provider_down_later_keeps_the_last_keys(
    provider: JWKSServer, caplog: pytest.LogCaptureFixture
) -> None:
    # cache_seconds below the settings' minimum: the cached keys go stale at once.
    cache = JWKSCache(provider.url, PINNED, cache_seconds=0.1, refetch_seconds=0.1)
    await cache.prefetch()
    provider.stop()
    await asyncio.sleep(0.2)
    with caplog.at_level(logging.WARNING, logger=jwks.__name__):
        assert await cache.key(rsa_key().kid, "RS256") is not None  # stale, still good
        await asyncio.sleep(0.1)  # the background refresh fails meanwhile
        assert await cache.key(rsa_key().kid, "RS256") is not None
        assert await cache.key("unknown", "RS256") is None  # 403, not 503: keys are known
    assert "keeping the last keys" in caplog.text


async def test_stale_keys_are_refreshed_in_the_background(provider: JWKSServer) -> None:
    cache = JWKSCache(provider.url, PINNED, cache_seconds=0.1, refetch_seconds=0.1)
    await cache.prefetch()
    await asyncio.sleep(0.2)
    provider.delay = 1.0
    started = time.monotonic()
    assert await cache.key(ec_key().kid, "ES256") is not None
    assert time.monotonic() - started < 0.5  # did not wait for the slow download
    await asyncio.to_thread(provider.wait_for_requests, 2)
    assert provider.requests == 2


async def test_a_slow_provider_never_blocks_the_event_loop(provider: JWKSServer) -> None:
    checking = verifier(provider)
    await checking.start()
    await asyncio.sleep(INTERVAL)
    provider.delay = 1.0
    loop = asyncio.get_running_loop()
    gaps = []

    async def tick() -> None:
        while True:
            before = loop.time()
            await asyncio.sleep(0.01)
            gaps.append(loop.time() - before)

    ticker = asyncio.create_task(tick())
    waiting = asyncio.create_task(checking.verify(random_kid_token()))  # starts the download
    await asyncio.to_thread(provider.wait_for_requests, 2)
    started = time.monotonic()
    known = await checking.verify(ec_key().token().encode())  # its key is cached
    answered_in = time.monotonic() - started
    assert await waiting == INVALID_TOKEN
    ticker.cancel()
    assert isinstance(known, Identity)
    # Generous bounds (normally milliseconds): this is about not blocking, not speed.
    assert answered_in < 0.5, answered_in
    assert max(gaps) < 0.5, max(gaps)


async def test_a_handshake_waits_for_a_slow_download_at_most_a_bound(
    provider: JWKSServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(jwks, "WAIT_SECONDS", 0.2)
    provider.stop()
    checking = verifier(provider, refetch=0)
    await checking.start()  # nothing fetched
    provider.start()
    provider.delay = 0.6
    token = rsa_key().token().encode()
    started = time.monotonic()
    assert await checking.verify(token) == AUTH_UNAVAILABLE
    assert time.monotonic() - started < 0.5
    await asyncio.sleep(0.6)  # the download went on without the handshake
    provider.delay = 0
    assert isinstance(await checking.verify(token), Identity)
    assert provider.requests == 1


def foreign_jwks() -> list[Any]:
    """Keys a JWKS may carry that must never verify a token here.

    The RSA and EC ones carry the material of the tests' own keys: kept by
    mistake, they would verify the tokens ``test_tokens_naming_ignored_keys``
    signs.
    """
    rsa_public = rsa_key().jwk
    ec_private = jwt.get_algorithm_by_name("ES256").to_jwk(ec_key().private_key, as_dict=True)
    return [
        {"kty": "oct", "kid": "shared", "k": "c2VjcmV0LXNlY3JldC1zZWNyZXQtc2VjcmV0LXNlY3JldA"},
        {**rsa_public, "kid": "enc", "use": "enc"},
        {**rsa_public, "kid": "rs384", "alg": "RS384"},
        {**ec_private, "kid": "private"},
        {"kty": "nope", "kid": "nope"},
        {"kty": "RSA", "kid": "broken", "n": 5, "e": "AQAB"},
        "not an object",
    ]


def test_only_public_signing_keys_for_pinned_algorithms_are_kept() -> None:
    document = {"keys": [*foreign_jwks(), rsa_key().jwk]}
    assert list(usable_keys(document, PINNED)) == [rsa_key().kid]


async def test_tokens_naming_ignored_keys_are_invalid(provider: JWKSServer) -> None:
    provider.publish(rsa_key(), extra=tuple(foreign_jwks()))
    checking = verifier(provider)
    await checking.start()
    secret = b"secret-secret-secret-secret-secret"  # the "oct" key's k
    hs = jwt.encode({"sub": "a", "exp": int(time.time()) + 60}, secret, "HS256", {"kid": "shared"})
    for token in (
        hs,
        rsa_key().token(kid="enc"),
        rsa_key().token(kid="rs384"),
        ec_key().token(kid="private"),
        ec_key().token(kid=rsa_key().kid),  # ES256 under an RS256 key's kid
    ):
        assert await checking.verify(token.encode()) == INVALID_TOKEN
    assert isinstance(await checking.verify(rsa_key().token().encode()), Identity)


async def test_a_token_without_kid_uses_the_only_key(provider: JWKSServer) -> None:
    claims = {"sub": "a", "exp": int(time.time()) + 60}
    token = jwt.encode(claims, rsa_key().private_key, "RS256").encode()
    provider.publish(rsa_key())
    single = verifier(provider)
    await single.start()
    assert isinstance(await single.verify(token), Identity)
    provider.publish(rsa_key(), ec_key())
    several = verifier(provider)
    await several.start()
    assert await several.verify(token) == INVALID_TOKEN  # which one? none


@pytest.mark.parametrize(
    ("status", "body"),
    [
        (500, b'{"error": "oops"}'),
        (200, b"<html>not json</html>"),
        (200, b"[]"),
        (200, b'{"keys": "none"}'),
        (200, b'{"keys": []}'),
        (200, b'{"keys": [{"kty": "oct", "k": "c2VjcmV0"}]}'),
        (200, b" " * (jwks.MAX_JWKS_BYTES + 1)),
    ],
    ids=["500", "html", "array", "keys-not-a-list", "no-keys", "only-hmac", "too-large"],
)
async def test_a_broken_jwks_is_a_warning_and_a_503(
    provider: JWKSServer, caplog: pytest.LogCaptureFixture, status: int, body: bytes
) -> None:
    provider.status, provider.raw = status, body
    checking = verifier(provider)
    with caplog.at_level(logging.WARNING, logger=jwks.__name__):
        await checking.start()
    assert await checking.verify(rsa_key().token().encode()) == AUTH_UNAVAILABLE
    [record] = caplog.records
    assert record.levelno == logging.WARNING
    assert record.exc_info is None  # one line, no traceback


# -- End to end: a real uvicorn with WS_JWKS_URL --------------------------------------------


async def attempt(server: LiveServer, path: str, token: str) -> tuple[int, str]:
    """(101, "echo") when admitted; else (HTTP status, refusal code), the status read
    back from the close code when the refusal came after accept."""
    headers = {"authorization": f"Bearer {token}"}
    try:
        async with connect(server.ws_url + path, additional_headers=headers) as websocket:
            await websocket.send("echo")
            if await websocket.recv() == "echo":
                return ADMITTED
            await websocket.recv()  # after the JSON refusal comes the close
    except InvalidStatus as refused:
        return refused.response.status_code, json.loads(refused.response.body)["code"]
    except ConnectionClosed as closed:
        close = closed.rcvd
        return (close.code - 4000, close.reason) if close else (-1, "no close frame")
    raise AssertionError(f"{path}: neither admitted nor refused")


def refusal(rejection: Rejection) -> tuple[int, str]:
    """What ``attempt`` returns for this rejection, however it was delivered."""
    return rejection.status, rejection.code


def live_env(provider: JWKSServer) -> dict[str, str]:
    return {
        "WS_JWT_SECRET": "",  # the tests' HS256 secret, unset: keys come from the provider
        "WS_JWKS_URL": provider.url,
        "WS_JWKS_REFETCH_SECONDS": str(INTERVAL),
        "NO_PROXY": "127.0.0.1",
    }


@pytest.fixture
def live(provider: JWKSServer, tmp_path: Path) -> Iterator[LiveServer]:
    with LiveServer(tmp_path, env=live_env(provider)) as server:
        yield server
    server.assert_no_unexpected_errors()


async def test_live_provider_keys_admit_refuse_rotate_and_stay_responsive(
    live: LiveServer, provider: JWKSServer
) -> None:
    for path in ECHO_PATHS:
        assert await attempt(live, path, rsa_key().token()) == ADMITTED
        assert await attempt(live, path, ec_key().token()) == ADMITTED
    assert provider.requests == 1

    # A flood of random kids: at most one refetch per interval, however many handshakes.
    await asyncio.sleep(INTERVAL)
    tokens = [random_kid_token().decode() for _ in range(30)]
    started = time.monotonic()
    flood = await asyncio.gather(
        *(attempt(live, path, token) for path in ECHO_PATHS for token in tokens)
    )
    intervals = (time.monotonic() - started) / INTERVAL  # below 1 unless the machine crawls
    assert set(flood) == {refusal(INVALID_TOKEN)}
    assert 1 <= provider.requests - 1 <= 1 + int(intervals)

    # Rotation: the new kid is admitted once the interval allows a refetch.
    rotated = new_key("ES256")
    provider.publish(rsa_key(), rotated)
    await asyncio.sleep(INTERVAL)
    fetched = provider.requests
    for path in ECHO_PATHS:
        assert await attempt(live, path, rotated.token()) == ADMITTED
    assert provider.requests == fetched + 1

    # A slow provider: while a download for an unknown kid is under way, /health and
    # handshakes whose key is cached are answered at once.
    await asyncio.sleep(INTERVAL)
    provider.delay = 1.5
    waiting = asyncio.create_task(attempt(live, ECHO_PATHS[0], random_kid_token().decode()))
    await asyncio.to_thread(provider.wait_for_requests, fetched + 2)  # under way
    started = time.monotonic()
    health = await asyncio.to_thread(live.get, "/health")
    health_in = time.monotonic() - started
    started = time.monotonic()
    known = await attempt(live, ECHO_PATHS[0], rotated.token())
    known_in = time.monotonic() - started
    assert (health[0], known) == (200, ADMITTED)
    # Generous bounds (normally milliseconds): this is about not blocking, not speed.
    assert health_in < 1.0, health_in
    assert known_in < 1.0, known_in
    assert await waiting == refusal(INVALID_TOKEN)
    provider.delay = 0

    # The provider goes down: the keys already fetched keep working.
    provider.stop()
    await asyncio.sleep(INTERVAL)
    for path in ECHO_PATHS:
        assert await attempt(live, path, random_kid_token().decode()) == refusal(INVALID_TOKEN)
        assert await attempt(live, path, rotated.token()) == ADMITTED
    assert "could not fetch the JWKS" in live.log


async def test_live_provider_down_at_start_up_is_503_then_admitted(
    provider: JWKSServer, tmp_path: Path
) -> None:
    provider.stop()
    with LiveServer(tmp_path, env=live_env(provider)) as live:
        for path in ECHO_PATHS:
            assert await attempt(live, path, rsa_key().token()) == refusal(AUTH_UNAVAILABLE)
        provider.start()
        await asyncio.sleep(INTERVAL)
        for path in ECHO_PATHS:
            assert await attempt(live, path, rsa_key().token()) == ADMITTED
    assert "handshakes are refused with 503 auth_unavailable" in live.log
    live.assert_no_unexpected_errors()
