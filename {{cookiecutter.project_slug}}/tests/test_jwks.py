"""Keys from an identity provider's JWKS, served over real HTTP by ``jwks_server.py``.

In process (the verifier and its cache against the real provider) and end to end
(a real uvicorn with ``WS_JWKS_URL``): RS256 and ES256, the refetch policy under a
flood of random ``kid``s, shared downloads, key rotation, a provider that is
down, slow, or publishes keys this app must not use.
"""

import asyncio
import base64
import json
import logging
import os
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
    DownloadFailed,
    usable_keys,
)
from {{ cookiecutter.package_name }}.rejections import (
    INVALID_TOKEN,
    Rejection,
)

from cases import ECHO_PATHS
from jwks_server import DRIP, HUGE, SILENT, JWKSServer, SigningKey, ec_key, new_key, rsa_key
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
def decoded(monkeypatch: pytest.MonkeyPatch) -> list[bytes]:
    """The tokens PyJWT decodes, in order: a remembered token is not among them."""
    tokens = []
    decode = jwt.PyJWT.decode_complete

    def counting(self: jwt.PyJWT, token: bytes, *args: Any, **kwargs: Any) -> Any:
        tokens.append(token)
        return decode(self, token, *args, **kwargs)

    monkeypatch.setattr(jwt.PyJWT, "decode_complete", counting)
    return tokens


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


def verifier(
    provider: JWKSServer, refetch: float = INTERVAL, **settings: Any
) -> CredentialVerifier:
    return CredentialVerifier(
        AuthSettings(jwks_url=provider.url, jwks_refetch_seconds=refetch, **settings)
    )


def random_kid_token() -> bytes:
    return rsa_key().token(kid=uuid.uuid4().hex).encode()


def kidless(key: SigningKey, **claims: Any) -> bytes:
    """A token whose header names no key, as oidc-provider-mock (Authlib) signs them."""
    payload = {"sub": "alice", "exp": int(time.time()) + 600, **claims}
    return jwt.encode(payload, key.private_key, key.algorithm).encode()


def forged_signature(token: bytes) -> bytes:
    """The same header and claims, with a signature no key made."""
    head, _ = token.rsplit(b".", 1)
    return head + b"." + base64.urlsafe_b64encode(os.urandom(256)).rstrip(b"=")


async def test_rs256_and_es256_tokens_are_admitted(provider: JWKSServer) -> None:
    checking = verifier(provider)
    await checking.start()
    assert checking.readiness() is None
    rs = await checking.verify(rsa_key().token("alice", scope="read write").encode())
    es = await checking.verify(ec_key().token("bob", scp=["admin"]).encode())
    assert isinstance(rs, Identity)
    assert isinstance(es, Identity)
    assert (rs.user.identity, rs.auth.scopes) == ("alice", ["read", "write"])
    assert (es.user.identity, es.auth.scopes) == ("bob", ["admin"])
    assert provider.requests == 1  # fetched once, at start-up


FLOODS = [
    pytest.param(random_kid_token, id="random-kids"),
    pytest.param(lambda: kidless(new_key("ES256")), id="kid-less-foreign-key"),
    pytest.param(lambda: forged_signature(rsa_key().token().encode()), id="garbage-signature"),
    pytest.param(lambda: forged_signature(kidless(rsa_key())), id="garbage-kid-less"),
]


@pytest.mark.parametrize("make", FLOODS)
async def test_a_flood_of_bad_tokens_costs_one_fetch_per_interval(
    provider: JWKSServer, clock: Clock, make: Any
) -> None:
    checking = verifier(provider)
    await checking.start()
    tokens = [make() for _ in range(4)]
    clock.now += INTERVAL
    flood = await asyncio.gather(*(checking.verify(tokens[i % 4]) for i in range(200)))
    assert flood == [INVALID_TOKEN] * 200
    assert provider.requests == 2  # start-up, and one refetch for the whole flood
    for i in range(100):
        assert await checking.verify(tokens[i % 4]) == INVALID_TOKEN
    clock.now += INTERVAL / 2
    assert await checking.verify(tokens[0]) == INVALID_TOKEN
    assert provider.requests == 2
    clock.now += INTERVAL / 2
    assert await checking.verify(tokens[1]) == INVALID_TOKEN
    assert provider.requests == 3
    print(f"{provider.requests - 1} fetches for 302 bad tokens over two intervals")


async def test_rotation_new_kid_is_fetched_once_for_all_concurrent_handshakes(
    provider: JWKSServer, clock: Clock
) -> None:
    checking = verifier(provider)
    await checking.start()
    new = new_key("ES256")
    provider.publish(new)  # rotated: the old keys are gone
    provider.delay = 0.3  # the download is still running when the others arrive
    clock.now += INTERVAL
    outcomes = await asyncio.gather(*(checking.verify(new.token().encode()) for _ in range(20)))
    assert all(isinstance(outcome, Identity) for outcome in outcomes)
    assert provider.requests == 2
    # A token signed with a retired key is refused once the rotation is known.
    provider.delay = 0
    assert await checking.verify(rsa_key().token().encode()) == INVALID_TOKEN


async def test_rotation_without_kid_is_followed_within_the_interval(
    provider: JWKSServer, clock: Clock
) -> None:
    """Tokens and JWKS without kid: a signature that no cached key verifies refetches."""
    old, new = new_key("RS256", kid=False), new_key("RS256", kid=False)
    provider.publish(old)
    checking = verifier(provider)
    await checking.start()
    remembered = kidless(old)
    assert isinstance(await checking.verify(remembered), Identity)
    provider.publish(new)  # the provider restarted with a new key
    token = kidless(new)
    assert await checking.verify(token) == INVALID_TOKEN  # fetched moments ago: not again
    assert isinstance(await checking.verify(remembered), Identity)  # its key, as far as we know
    clock.now += INTERVAL
    assert isinstance(await checking.verify(token), Identity)
    assert provider.requests == 2
    # The refetch retired the old key: its remembered token is checked again, and refused.
    assert await checking.verify(remembered) == INVALID_TOKEN


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


async def test_an_unchanged_jwks_keeps_remembered_tokens(
    provider: JWKSServer, clock: Clock, decoded: list[bytes]
) -> None:
    checking = verifier(provider)
    await checking.start()
    token = rsa_key().token().encode()
    assert isinstance(await checking.verify(token), Identity)
    clock.now += INTERVAL
    assert await checking.verify(random_kid_token()) == INVALID_TOKEN  # a refetch: same keys
    assert provider.requests == 2
    assert isinstance(await checking.verify(token), Identity)
    assert decoded.count(token) == 1  # still remembered


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
    assert checking.readiness() == "keys"
    token = rsa_key().token().encode()
    refused = await checking.verify(token)
    assert refused == AUTH_UNAVAILABLE
    assert (refused.status, dict(refused.headers)["retry-after"]) == (503, "5")
    provider.start()
    assert await checking.verify(token) == AUTH_UNAVAILABLE  # within the interval: no fetch
    clock.now += INTERVAL
    assert isinstance(await checking.verify(token), Identity)
    assert checking.readiness() is None


async def test_provider_down_later_keeps_the_last_keys(
    provider: JWKSServer, clock: Clock, caplog: pytest.LogCaptureFixture
) -> None:
    checking = verifier(provider, jwt_cache_size=0)
    await checking.start()
    provider.stop()
    clock.now += 301  # stale: refreshed in the background, which fails
    with caplog.at_level(logging.WARNING, logger=jwks.__name__):
        assert isinstance(await checking.verify(rsa_key().token().encode()), Identity)
        await asyncio.to_thread(provider.wait_for_requests, 2)
        await asyncio.sleep(0.1)
        assert isinstance(await checking.verify(rsa_key().token().encode()), Identity)
        clock.now += INTERVAL
        assert await checking.verify(random_kid_token()) == INVALID_TOKEN  # 403, not 503
    assert "keeping the last keys" in caplog.text
    assert checking.readiness() is None  # a usable key set is at hand


async def test_stale_keys_are_refreshed_in_the_background(
    provider: JWKSServer, clock: Clock
) -> None:
    checking = verifier(provider, jwt_cache_size=0)
    await checking.start()
    clock.now += 301
    provider.delay = 1.0
    started = time.monotonic()
    assert isinstance(await checking.verify(ec_key().token().encode()), Identity)
    assert time.monotonic() - started < 0.5  # did not wait for the slow download
    await asyncio.to_thread(provider.wait_for_requests, 2)
    assert provider.requests == 2
    await checking.close()  # stops the download under way


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
    provider: JWKSServer, clock: Clock, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(jwks, "WAIT_SECONDS", 0.2)
    provider.stop()
    checking = verifier(provider)
    await checking.start()  # nothing fetched
    provider.start()
    provider.delay = 0.6
    clock.now += INTERVAL
    token = rsa_key().token().encode()
    started = time.monotonic()
    assert await checking.verify(token) == AUTH_UNAVAILABLE
    assert time.monotonic() - started < 0.5
    await asyncio.to_thread(provider.wait_for_requests, 2)
    await asyncio.sleep(0.8)  # the download went on without the handshake
    provider.delay = 0
    assert isinstance(await checking.verify(token), Identity)
    assert provider.requests == 2


async def test_close_stops_the_download_under_way(provider: JWKSServer) -> None:
    provider.behaviour = SILENT
    checking = verifier(provider, jwks_timeout_seconds=30)
    await checking.start()  # gives up waiting after WAIT_SECONDS; the download goes on
    started = time.monotonic()
    await checking.close()
    assert time.monotonic() - started < 1
    assert not [task for task in asyncio.all_tasks() if "_fetch" in repr(task)]
    assert await checking.verify(rsa_key().token().encode()) == AUTH_UNAVAILABLE
    assert provider.requests == 1  # closed: no other download starts


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
    assert [key.kid for key in usable_keys(document, PINNED)] == [rsa_key().kid]
    with pytest.raises(DownloadFailed, match="no signing key for ES256, RS256"):
        usable_keys({"keys": foreign_jwks()}, PINNED)


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


async def test_a_token_without_kid_is_checked_with_every_key_of_its_algorithm(
    provider: JWKSServer,
) -> None:
    provider.publish(new_key("RS256"), rsa_key(), ec_key())
    checking = verifier(provider)
    await checking.start()
    assert isinstance(await checking.verify(kidless(rsa_key())), Identity)
    assert isinstance(await checking.verify(kidless(ec_key())), Identity)
    assert await checking.verify(kidless(new_key("ES256"))) == INVALID_TOKEN


# -- Hostile key servers: each is one WARNING within the deadline, never a hang -----------

DEADLINE = 1.0  # WS_JWKS_TIMEOUT_SECONDS in these tests
SLACK = 1.5  # a busy machine's delay on top of the contract's bound


def only_an_hmac_key(provider: JWKSServer) -> None:
    provider.publish(extra=({"kty": "oct", "k": "c2VjcmV0LXNlY3JldC1zZWNyZXQtc2VjcmV0"},))


HOSTILE: list[Any] = [
    pytest.param(lambda p: setattr(p, "behaviour", SILENT), "within 1 s", id="never-answers"),
    pytest.param(lambda p: setattr(p, "behaviour", DRIP), "within 1 s", id="drips"),
    pytest.param(lambda p: setattr(p, "behaviour", HUGE), "larger than 1024 KB", id="50-MB"),
    pytest.param(lambda p: setattr(p, "status", 500), "HTTP 500", id="500"),
    pytest.param(lambda p: setattr(p, "raw", b"{not json"), "JSONDecodeError", id="not-json"),
    pytest.param(lambda p: setattr(p, "raw", b"[]"), 'no "keys" list', id="not-a-jwks"),
    pytest.param(only_an_hmac_key, "no signing key for ES256, RS256", id="only-an-oct-key"),
]


@pytest.mark.parametrize(("make_hostile", "reason"), HOSTILE)
async def test_a_hostile_key_server_is_one_warning_within_the_deadline(
    provider: JWKSServer, caplog: pytest.LogCaptureFixture, make_hostile: Any, reason: str
) -> None:
    make_hostile(provider)
    checking = verifier(provider, jwks_timeout_seconds=DEADLINE)
    started = time.monotonic()
    with caplog.at_level(logging.WARNING):
        await checking.start()
        took = time.monotonic() - started
        assert await checking.verify(rsa_key().token().encode()) == AUTH_UNAVAILABLE
        assert checking.readiness() == "keys"
    assert took < DEADLINE + SLACK, took
    [record] = caplog.records  # one line: no ERROR, no traceback
    assert (record.levelno, record.exc_info) == (logging.WARNING, None)
    assert reason in record.getMessage()
    assert provider.requests == 1
    await checking.close()


async def test_a_redirect_to_another_origin_is_refused(
    provider: JWKSServer, caplog: pytest.LogCaptureFixture
) -> None:
    with JWKSServer([rsa_key()]) as elsewhere:  # serves good keys, on another port
        provider.status, provider.location = 302, elsewhere.url
        checking = verifier(provider)
        with caplog.at_level(logging.WARNING):
            await checking.start()
        assert await checking.verify(rsa_key().token().encode()) == AUTH_UNAVAILABLE
        assert elsewhere.requests == 0
    [record] = caplog.records
    assert f"redirected to another origin ({elsewhere.url})" in record.getMessage()


async def test_a_redirect_within_the_origin_is_followed(provider: JWKSServer) -> None:
    provider.status, provider.location = 301, "/keys/current.json"
    checking = verifier(provider)
    await checking.start()
    assert isinstance(await checking.verify(rsa_key().token().encode()), Identity)
    assert provider.requests == 2  # the redirect, then the keys


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
    print(f"{provider.requests - 1} fetches, {len(flood)} handshakes, {intervals:.1f} intervals")

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


@pytest.mark.parametrize("behaviour", [SILENT, DRIP, HUGE])
async def test_live_hostile_key_server_answers_within_the_deadline_and_health_stays_up(
    provider: JWKSServer, tmp_path: Path, behaviour: str
) -> None:
    provider.behaviour = behaviour
    env = {**live_env(provider), "WS_JWKS_TIMEOUT_SECONDS": "1.5"}
    with LiveServer(tmp_path, env=env) as live:
        await asyncio.sleep(INTERVAL)
        started = time.monotonic()
        refused = asyncio.create_task(attempt(live, ECHO_PATHS[-1], rsa_key().token()))
        await asyncio.to_thread(provider.wait_for_requests, 2)  # the refetch is under way
        health = await asyncio.to_thread(live.get, "/health")
        health_in = time.monotonic() - started
        assert await refused == refusal(AUTH_UNAVAILABLE)
        answered_in = time.monotonic() - started
        for path in ECHO_PATHS:  # within the interval: refused at once, no new download
            assert await attempt(live, path, rsa_key().token()) == refusal(AUTH_UNAVAILABLE)
    assert health[0] == 200
    assert health_in < 1.0, health_in  # generous: normally milliseconds
    assert answered_in < 1.5 + SLACK, answered_in
    warnings = [line for line in live.log.splitlines() if "could not fetch the JWKS" in line]
    assert len(warnings) == provider.requests == 2  # start-up and the refetch: one line each
    assert all(line.startswith("WARNING") for line in warnings)
    live.assert_no_unexpected_errors()
