"""Handshake rate, connections per identity and one-time tickets, for every strategy
this project has (Starlette's TestClient, memory store; tests/test_redis.py runs the
same limits on real servers sharing a real Redis)."""

import json
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient
from starlette.testclient import WebSocketDenialResponse
from starlette.types import Receive, Scope, Send
from starlette.websockets import WebSocketDisconnect

from {{ cookiecutter.package_name }}.main import create_app
from {{ cookiecutter.package_name }}.settings import Settings

from cases import ADMIN_ECHO_ENDPOINTS, BEARER, ECHO_ENDPOINTS
from credentials import IDENTITY, SECOND_IDENTITY, SECOND_TOKEN, TOKEN, WRONG_TOKEN

STRATEGIES = list(ECHO_ENDPOINTS)
ADMITTED = (101, "admitted")


class Spy:
    """The app, remembering each WebSocket scope: after a handshake, ``scope["user"]``
    is what the endpoint saw as ``websocket.user``."""

    def __init__(self, app: FastAPI) -> None:
        self.app = app
        self.scopes: list[Scope] = []

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "websocket":
            self.scopes.append(scope)
        await self.app(scope, receive, send)

    def last_user(self) -> tuple[str, list[str]]:
        scope = self.scopes[-1]
        return scope["user"].identity, scope["auth"].scopes


def app_with(settings: Settings, **changes: object) -> Spy:
    return Spy(create_app(settings.model_copy(update=changes)))


@contextmanager
def started(spy: Spy, address: str = "testclient") -> Iterator[TestClient]:
    with TestClient(spy, client=(address, 50000)) as client:  # type: ignore[arg-type]
        yield client


def outcome(client: TestClient, url: str, headers: dict[str, str] | None = None) -> tuple[int, str]:
    """``ADMITTED`` after one echo, or a refusal as (HTTP status, code)."""
    refusal = refusal_of(client, url, headers)
    return ADMITTED if refusal is None else refusal[:2]


def refusal_of(
    client: TestClient, url: str, headers: dict[str, str] | None = None
) -> tuple[int, str, dict[str, str]] | None:
    """(status, code, response headers) of a refusal, or None if the client was admitted.

    Whichever way the endpoint refuses: an HTTP denial (status, JSON body, headers),
    or a JSON message after accept and a close whose code is 4000 more than the status.
    """
    try:
        with client.websocket_connect(url, headers=dict(headers or {})) as ws:
            ws.send_text("ping")
            first = ws.receive_text()
            if first == "ping":
                return None
            with pytest.raises(WebSocketDisconnect) as closed:
                ws.receive_text()
    except WebSocketDenialResponse as denial:
        return denial.status_code, denial.json()["code"], dict(denial.headers)
    error = json.loads(first)
    assert set(error) == {"error", "detail"}
    assert closed.value.reason == error["error"]
    return closed.value.code - 4000, error["error"], {}


@contextmanager
def held(client: TestClient, url: str, headers: dict[str, str]) -> Iterator[object]:
    """An admitted connection, open until the block ends (the client closes it)."""
    with client.websocket_connect(url, headers=dict(headers)) as ws:
        ws.send_text("hold")
        assert ws.receive_text() == "hold"
        yield ws


# -- handshake rate per client address ---------------------------------------------------


@pytest.mark.parametrize("strategy", STRATEGIES)
def test_rate_limit_refuses_429_with_retry_after(settings: Settings, strategy: str) -> None:
    spy = app_with(settings, handshake_rate_limit="3/minute")
    url = ECHO_ENDPOINTS[strategy]
    with started(spy) as client:
        for _ in range(3):
            assert outcome(client, url, BEARER) == ADMITTED
        refusal = refusal_of(client, url, BEARER)
    assert refusal is not None
    status, code, headers = refusal
    assert (status, code) == (429, "rate_limited")
    if headers:  # an HTTP denial says when to retry (a close frame has no headers)
        assert 1 <= int(headers["retry-after"]) <= 60


@pytest.mark.parametrize("strategy", STRATEGIES)
def test_rate_limit_is_checked_before_credentials(settings: Settings, strategy: str) -> None:
    spy = app_with(settings, handshake_rate_limit="3/minute")
    url = ECHO_ENDPOINTS[strategy]
    with started(spy) as client:
        # Handshakes without or with a wrong credential spend the address's budget too ...
        assert outcome(client, url) == (401, "missing_token")
        assert outcome(client, url, {"authorization": f"Bearer {WRONG_TOKEN}"}) == (
            403,
            "invalid_token",
        )
        assert outcome(client, url, BEARER) == ADMITTED
        # ... and once it is spent, no credential is even looked at.
        assert outcome(client, url) == (429, "rate_limited")
        assert outcome(client, url, BEARER) == (429, "rate_limited")


def test_rate_limit_is_per_client_address(settings: Settings) -> None:
    spy = app_with(settings, handshake_rate_limit="1/minute")
    strategy = STRATEGIES[0]
    url = ECHO_ENDPOINTS[strategy]
    with started(spy, "198.51.100.1") as here:
        assert outcome(here, url, BEARER) == ADMITTED
        assert outcome(here, url, BEARER) == (429, "rate_limited")
        # Same app, same identity, another address: its own budget.
        there = TestClient(spy, client=("198.51.100.2", 50000))  # type: ignore[arg-type]
        assert outcome(there, url, BEARER) == ADMITTED
        # The budget is per address, whichever endpoint is asked.
        for other_url in ECHO_ENDPOINTS.values():
            assert outcome(here, other_url, BEARER) == (429, "rate_limited")


def test_rate_limit_off(settings: Settings) -> None:
    spy = app_with(settings, handshake_rate_limit="off")
    with started(spy) as client:
        for url in ECHO_ENDPOINTS.values():
            for _ in range(30):
                assert outcome(client, url, BEARER) == ADMITTED


# -- open connections per identity ---------------------------------------------------------

SECOND = {"authorization": f"Bearer {SECOND_TOKEN}"}


@pytest.mark.parametrize("strategy", STRATEGIES)
def test_connections_per_identity_are_capped(settings: Settings, strategy: str) -> None:
    spy = app_with(settings, max_connections_per_identity=2)
    url = ECHO_ENDPOINTS[strategy]
    with started(spy) as client, held(client, url, BEARER), held(client, url, BEARER):
        assert outcome(client, url, BEARER) == (429, "too_many_connections")
        # Through any channel: a query token is the same identity.
        assert outcome(client, f"{url}?token={TOKEN}") == (429, "too_many_connections")
        # Another identity has slots of its own.
        assert outcome(client, url, SECOND) == ADMITTED


def test_the_cap_counts_connections_on_every_endpoint(settings: Settings) -> None:
    spy = app_with(settings, max_connections_per_identity=len(ECHO_ENDPOINTS))
    with started(spy) as client:
        with ExitStack() as connections:
            for url in ECHO_ENDPOINTS.values():  # one connection on each endpoint
                connections.enter_context(held(client, url, BEARER))
            for url in [*ECHO_ENDPOINTS.values(), *ADMIN_ECHO_ENDPOINTS.values()]:
                assert outcome(client, url, BEARER) == (429, "too_many_connections")
        for url in ECHO_ENDPOINTS.values():  # all given back
            assert outcome(client, url, BEARER) == ADMITTED


@pytest.mark.parametrize("strategy", STRATEGIES)
@pytest.mark.parametrize("ending", ["client-closes", "server-closes", "client-vanishes"])
def test_the_slot_is_given_back_however_the_connection_ends(
    settings: Settings, strategy: str, ending: str
) -> None:
    spy = app_with(settings, max_connections_per_identity=1)
    url = ECHO_ENDPOINTS[strategy]
    with started(spy) as client:
        for _ in range(3):  # the one slot, taken and given back again and again
            with held(client, url, BEARER) as ws:
                assert outcome(client, url, BEARER) == (429, "too_many_connections")
                if ending == "server-closes":
                    ws.send_text("x" * 2000)  # over WS_MAX_MESSAGE_BYTES: the server closes 1009
                    with pytest.raises(WebSocketDisconnect) as closed:
                        ws.receive_text()
                    assert closed.value.code == 1009
                elif ending == "client-vanishes":
                    ws.close(1006)  # no close frame: the transport just went away
        assert outcome(client, url, BEARER) == ADMITTED


def test_cap_off(settings: Settings) -> None:
    spy = app_with(settings, max_connections_per_identity=None)
    strategy = STRATEGIES[0]
    url = ECHO_ENDPOINTS[strategy]
    with (
        started(spy) as client,
        held(client, url, BEARER),
        held(client, url, BEARER),
        held(client, url, BEARER),
    ):
        assert outcome(client, url, BEARER) == ADMITTED


# -- one-time tickets ----------------------------------------------------------------------


def ticket_for(client: TestClient, token: str) -> str:
    response = client.post("/ws/tickets", headers={"authorization": f"Bearer {token}"})
    assert response.status_code == 201, response.text
    body = response.json()
    assert set(body) == {"ticket", "expires_in"}
    assert body["expires_in"] == 30
    assert response.headers["cache-control"] == "no-store"
    assert len(body["ticket"]) >= 40
    return body["ticket"]


def test_ticket_endpoint_needs_a_valid_bearer_credential(settings: Settings) -> None:
    with started(app_with(settings)) as client:
        missing = client.post("/ws/tickets")
        assert missing.status_code == 401
        assert missing.json()["code"] == "missing_token"
        assert missing.headers["www-authenticate"].startswith("Bearer")
        wrong = client.post("/ws/tickets", headers={"authorization": f"Bearer {WRONG_TOKEN}"})
        assert (wrong.status_code, wrong.json()["code"]) == (403, "invalid_token")
        # Only the header: a query token or a ticket does not buy a ticket.
        query = client.post(f"/ws/tickets?token={TOKEN}")
        assert query.status_code == 401
        ticket = ticket_for(client, TOKEN)
        chained = client.post("/ws/tickets", headers={"authorization": f"Bearer {ticket}"})
        assert chained.status_code == 403
        assert client.get("/ws/tickets").status_code == 405


@pytest.mark.parametrize("strategy", STRATEGIES)
def test_a_ticket_admits_one_handshake_as_the_identity_that_asked(
    settings: Settings, strategy: str
) -> None:
    spy = app_with(settings)
    url = ECHO_ENDPOINTS[strategy]
    with started(spy) as client:
        ticket = ticket_for(client, SECOND_TOKEN)
        assert outcome(client, f"{url}?ticket={ticket}") == ADMITTED
        assert spy.last_user() == (SECOND_IDENTITY, [])
        # Used up: refused on this endpoint and on every other one.
        for other_url in ECHO_ENDPOINTS.values():
            assert outcome(client, f"{other_url}?ticket={ticket}") == (
                403,
                "invalid_ticket",
            )


@pytest.mark.parametrize("strategy", STRATEGIES)
def test_a_ticket_carries_the_scopes_of_who_asked(settings: Settings, strategy: str) -> None:
    spy = app_with(settings)
    admin_url = ADMIN_ECHO_ENDPOINTS[strategy]
    with started(spy) as client:
        ticket = ticket_for(client, TOKEN)
        assert outcome(client, f"{admin_url}?ticket={ticket}") == ADMITTED
        assert spy.last_user() == (IDENTITY, ["admin"])
        ticket = ticket_for(client, SECOND_TOKEN)
        assert outcome(client, f"{admin_url}?ticket={ticket}") == (
            403,
            "insufficient_scope",
        )


def test_ticket_requests_count_against_the_address_rate(settings: Settings) -> None:
    spy = app_with(settings, handshake_rate_limit="2/minute")
    with started(spy) as client:
        ticket_for(client, TOKEN)
        ticket_for(client, TOKEN)
        response = client.post("/ws/tickets", headers=dict(BEARER))
        assert (response.status_code, response.json()["code"]) == (429, "rate_limited")
        assert 1 <= int(response.headers["retry-after"]) <= 60


def test_a_ticket_holds_a_slot_like_any_connection(settings: Settings) -> None:
    spy = app_with(settings, max_connections_per_identity=1)
    strategy = STRATEGIES[0]
    url = ECHO_ENDPOINTS[strategy]
    with started(spy) as client:
        ticket = ticket_for(client, TOKEN)
        with held(client, url, BEARER):
            assert outcome(client, f"{url}?ticket={ticket}") == (
                429,
                "too_many_connections",
            )
        # The refusal came after the ticket was taken: it is used up all the same.
        assert outcome(client, f"{url}?ticket={ticket}") == (403, "invalid_ticket")
