"""Unit tests of the one admission pipeline both strategies rely on (memory store)."""

import asyncio
import logging

import pytest
from starlette.requests import HTTPConnection
from starlette.types import Scope

from {{ cookiecutter.package_name }} import store as store_module
from {{ cookiecutter.package_name }}.admission import (
    Admission,
    Admitted,
)
from {{ cookiecutter.package_name }}.auth import CredentialVerifier
from {{ cookiecutter.package_name }}.rejections import (
    HEADERS_TOO_LARGE,
    INSUFFICIENT_SCOPE,
    INVALID_TICKET,
    INVALID_TOKEN,
    MISSING_TOKEN,
    ORIGIN_NOT_ALLOWED,
    STORE_UNAVAILABLE,
    TOO_MANY_CONNECTIONS,
    Rejection,
)
from {{ cookiecutter.package_name }}.requirements import (
    GUARDED,
    Requirements,
)
from {{ cookiecutter.package_name }}.settings import Settings
from {{ cookiecutter.package_name }}.store import (
    Lease,
    MemoryStore,
    StoreUnavailable,
    Ticket,
)

from cases import ADMITTED, ALLOWED_ORIGIN, REFUSED
from credentials import IDENTITY, SECOND_IDENTITY, SECOND_TOKEN, TOKEN, WRONG_TOKEN

NEEDS_ADMIN = Requirements(scopes=frozenset({"admin"}))


def handshake(
    headers: dict[str, str] | None = None,
    query: str = "",
    subprotocols: list[str] | None = None,
    client: tuple[str, int] = ("203.0.113.7", 50000),
) -> Scope:
    return {
        "type": "websocket",
        "path": "/ws/echo",
        "query_string": query.removeprefix("?").encode(),
        "headers": [(k.lower().encode(), v.encode("latin-1")) for k, v in (headers or {}).items()],
        "subprotocols": subprotocols or [],
        "client": client,
    }


def bearer(token: str) -> dict[str, str]:
    return {"authorization": f"Bearer {token}"}


def pipeline(settings: Settings, store: object | None = None, **changes: object) -> Admission:
    settings = settings.model_copy(update=changes)
    return Admission(settings, CredentialVerifier(settings), store or MemoryStore())  # type: ignore[arg-type]


@pytest.fixture
def admission(settings: Settings) -> Admission:
    return pipeline(settings)


@pytest.mark.parametrize(("headers", "query", "subprotocols", "expected"), REFUSED)
async def test_refuses(
    admission: Admission,
    headers: dict[str, str],
    query: str,
    subprotocols: list[str],
    expected: Rejection,
) -> None:
    assert (
        await admission.admit(handshake(headers, query, subprotocols), GUARDED, "test") == expected
    )


@pytest.mark.parametrize(("headers", "query", "subprotocols"), ADMITTED)
async def test_admits_with_an_identity(
    admission: Admission, headers: dict[str, str], query: str, subprotocols: list[str]
) -> None:
    outcome = await admission.admit(handshake(headers, query, subprotocols), GUARDED, "test")
    assert isinstance(outcome, Admitted)
    assert outcome.identity.user.is_authenticated
    assert outcome.identity.user.identity in {IDENTITY, SECOND_IDENTITY}
    assert outcome.select_bearer == bool(subprotocols)


async def test_header_credential_wins_over_query(admission: Admission) -> None:
    outcome = await admission.admit(
        handshake(bearer(WRONG_TOKEN), f"?token={TOKEN}"), GUARDED, "test"
    )
    assert outcome == INVALID_TOKEN


async def test_no_origin_header_is_allowed_for_non_browser_clients(admission: Admission) -> None:
    assert isinstance(await admission.admit(handshake(bearer(TOKEN)), GUARDED, "test"), Admitted)


async def test_null_origin_is_allowed_only_when_listed(settings: Settings) -> None:
    admission = pipeline(settings, allowed_origins=["null"])
    outcome = await admission.admit(handshake({**bearer(TOKEN), "origin": "null"}), GUARDED, "test")
    assert isinstance(outcome, Admitted)


async def test_any_foreign_origin_among_several_refuses(admission: Admission) -> None:
    scope = handshake(bearer(TOKEN))
    scope["headers"] += [(b"origin", ALLOWED_ORIGIN.encode()), (b"origin", b"https://evil.example")]
    assert await admission.admit(scope, GUARDED, "test") == ORIGIN_NOT_ALLOWED


async def test_oversized_handshake_is_refused_before_anything_else(admission: Admission) -> None:
    scope = handshake({**bearer(TOKEN), "origin": "https://evil.example", "x-pad": "a" * 17_000})
    assert await admission.admit(scope, GUARDED, "test") == HEADERS_TOO_LARGE
    assert HEADERS_TOO_LARGE.status == 431


async def test_scopes_a_route_requires(admission: Admission) -> None:
    admitted = await admission.admit(handshake(bearer(TOKEN)), NEEDS_ADMIN, "test")
    assert isinstance(admitted, Admitted)
    assert admitted.identity.auth.scopes == ["admin"]
    refused = await admission.admit(handshake(bearer(SECOND_TOKEN)), NEEDS_ADMIN, "test")
    assert refused == INSUFFICIENT_SCOPE


async def test_handshake_rate_is_limited_per_address_before_credentials(settings: Settings) -> None:
    admission = pipeline(settings, handshake_rate_limit="2/minute")
    here, there = ("198.51.100.1", 1), ("198.51.100.2", 1)
    for _ in range(2):
        assert isinstance(
            await admission.admit(handshake(bearer(TOKEN), client=here), GUARDED, "t"), Admitted
        )
    for headers in (bearer(TOKEN), {}):  # with or without a credential: the rate comes first
        refused = await admission.admit(handshake(headers, client=here), GUARDED, "t")
        assert isinstance(refused, Rejection)
        assert (refused.status, refused.code) == (429, "rate_limited")
        retry_after = int(dict(refused.headers)["retry-after"])
        assert 1 <= retry_after <= 60
    assert isinstance(
        await admission.admit(handshake(bearer(TOKEN), client=there), GUARDED, "t"), Admitted
    )


async def test_connections_per_identity_are_capped_and_given_back(settings: Settings) -> None:
    admission = pipeline(settings, max_connections_per_identity=2)
    first = await admission.admit(handshake(bearer(TOKEN)), GUARDED, "t")
    second = await admission.admit(handshake(bearer(TOKEN)), GUARDED, "t")
    assert isinstance(first, Admitted)
    assert isinstance(second, Admitted)
    assert await admission.admit(handshake(bearer(TOKEN)), GUARDED, "t") == TOO_MANY_CONNECTIONS
    # Another identity has its own slots.
    assert isinstance(
        await admission.admit(handshake(bearer(SECOND_TOKEN)), GUARDED, "t"), Admitted
    )
    await admission.release(first)
    await admission.release(first)  # releasing twice gives back one slot, not two
    assert isinstance(await admission.admit(handshake(bearer(TOKEN)), GUARDED, "t"), Admitted)
    assert await admission.admit(handshake(bearer(TOKEN)), GUARDED, "t") == TOO_MANY_CONNECTIONS


async def test_concurrent_handshakes_cannot_both_take_the_last_slot(settings: Settings) -> None:
    admission = pipeline(settings, max_connections_per_identity=1)
    outcomes = await asyncio.gather(
        *(admission.admit(handshake(bearer(TOKEN)), GUARDED, "t") for _ in range(20))
    )
    assert sum(isinstance(outcome, Admitted) for outcome in outcomes) == 1
    assert outcomes.count(TOO_MANY_CONNECTIONS) == 19


def ticket_request(token: str | None) -> HTTPConnection:
    headers = [(b"authorization", f"Bearer {token}".encode())] if token else []
    return HTTPConnection({"type": "http", "headers": headers, "client": ("203.0.113.7", 1)})


async def test_a_ticket_admits_once_as_the_identity_that_asked(admission: Admission) -> None:
    issued = await admission.issue_ticket(ticket_request(TOKEN))
    assert isinstance(issued, tuple)
    ticket, seconds = issued
    assert len(ticket) >= 40
    assert seconds == 30
    admitted = await admission.admit(handshake(query=f"?ticket={ticket}"), NEEDS_ADMIN, "t")
    assert isinstance(admitted, Admitted)
    assert admitted.identity.user.identity == IDENTITY
    assert admitted.identity.auth.scopes == ["admin"]
    assert (
        await admission.admit(handshake(query=f"?ticket={ticket}"), GUARDED, "t") == INVALID_TICKET
    )


async def test_concurrent_uses_of_one_ticket_admit_one(admission: Admission) -> None:
    ticket, _ = await admission.issue_ticket(ticket_request(TOKEN))  # type: ignore[misc]
    outcomes = await asyncio.gather(
        *(admission.admit(handshake(query=f"?ticket={ticket}"), GUARDED, "t") for _ in range(10))
    )
    assert sum(isinstance(outcome, Admitted) for outcome in outcomes) == 1


async def test_a_ticket_expires_after_30_seconds(
    admission: Admission, monkeypatch: pytest.MonkeyPatch
) -> None:
    ticket, _ = await admission.issue_ticket(ticket_request(TOKEN))  # type: ignore[misc]
    later = store_module.time.monotonic() + 31
    monkeypatch.setattr(store_module.time, "monotonic", lambda: later)
    assert (
        await admission.admit(handshake(query=f"?ticket={ticket}"), GUARDED, "t") == INVALID_TICKET
    )


@pytest.mark.parametrize(
    ("token", "expected"), [(None, MISSING_TOKEN), (WRONG_TOKEN, INVALID_TOKEN)]
)
async def test_a_ticket_needs_a_valid_bearer_credential(
    admission: Admission, token: str | None, expected: Rejection
) -> None:
    assert await admission.issue_ticket(ticket_request(token)) == expected


class DownStore:
    """A store whose every call fails, as Redis does while it is down."""

    async def hit(self, *args: object) -> int:
        raise StoreUnavailable

    async def acquire_lease(self, identity: str, cap: int) -> Lease | None:
        raise StoreUnavailable

    async def release_lease(self, lease: Lease) -> None:
        raise AssertionError("no lease was taken")

    async def put_ticket(self, ticket: str, holder: Ticket, ttl: int) -> None:
        raise StoreUnavailable

    async def take_ticket(self, ticket: str) -> Ticket | None:
        raise StoreUnavailable


async def test_a_store_outage_fails_open_for_limits_and_closed_for_tickets(
    settings: Settings,
) -> None:
    admission = pipeline(settings, DownStore(), handshake_rate_limit="1/minute")
    for _ in range(3):  # over the rate limit and with a cap: both fail open
        outcome = await admission.admit(handshake(bearer(TOKEN)), GUARDED, "t")
        assert isinstance(outcome, Admitted)
        assert outcome.lease is None
    assert await admission.admit(handshake(query="?ticket=abc"), GUARDED, "t") == STORE_UNAVAILABLE
    assert STORE_UNAVAILABLE.status == 503
    assert await admission.issue_ticket(ticket_request(TOKEN)) == STORE_UNAVAILABLE


async def test_a_public_route_needs_no_credential_but_keeps_the_other_checks(
    admission: Admission,
) -> None:
    anyone = Requirements(public=True)
    admitted = await admission.admit(handshake(), anyone, "t")
    assert isinstance(admitted, Admitted)
    assert admitted.identity is None
    assert admitted.lease is None
    foreign = handshake({"origin": "https://evil.example"})
    assert await admission.admit(foreign, anyone, "t") == ORIGIN_NOT_ALLOWED


async def test_each_outcome_is_logged_once_with_identity_never_the_credential(
    admission: Admission, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO)
    await admission.admit(handshake(bearer(TOKEN)), GUARDED, "test")
    await admission.admit(handshake(query=f"?token={WRONG_TOKEN}"), GUARDED, "test")
    lines = [record.getMessage() for record in caplog.records]
    # A refusal is logged by the guard that delivers it (tests/test_routes.py).
    assert lines == [f"admitted WebSocket /ws/echo from 203.0.113.7:50000 as {IDENTITY}"]
    assert not any(TOKEN in line or WRONG_TOKEN in line for line in lines)
