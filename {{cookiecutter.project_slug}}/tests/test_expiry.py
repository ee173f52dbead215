"""A connection admitted with a JWT ends when the JWT does: close 4401 ``token_expired``.

On every echo endpoint this project has, whichever strategy admitted it, through
every credential channel (header, subprotocol, query, ticket), on a real uvicorn
(each ``--ws`` implementation, and behind nginx) and in process. A connection
that ends first leaves nothing behind: no task, no timer handle, no ERROR line.
"""

import asyncio
import json
import logging
import time
import urllib.request
from collections.abc import Callable, Iterator
from contextlib import ExitStack, suppress
from typing import Any

import jwt
import pytest
from fastapi.testclient import TestClient
from prometheus_client import REGISTRY
from starlette.authentication import AuthCredentials
from starlette.types import Message, Receive, Scope, Send
from starlette.websockets import WebSocketDisconnect
from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed

from {{ cookiecutter.package_name }} import guard
from {{ cookiecutter.package_name }}.admission import Admitted
from {{ cookiecutter.package_name }}.auth import (
    TOKEN_EXPIRED,
    mint_token,
)
from {{ cookiecutter.package_name }}.guard import WebSocketGuard
from {{ cookiecutter.package_name }}.identity import Identity, User
from {{ cookiecutter.package_name }}.rejections import (
    close_message,
)
from {{ cookiecutter.package_name }}.store import (
    Lease,
    MemoryStore,
)

from cases import ADMIN_ECHO_PATHS, ECHO_PATHS, subprotocols_for
from credentials import SECRET
from live_server import WS_IMPLEMENTATIONS, LiveServer
from loop_stats_app import loop_load

PATHS = ECHO_PATHS + ADMIN_ECHO_PATHS
CHANNELS = ("header", "subprotocol", "query", "ticket")
EXPIRED = (4401, "token_expired")
EARLY = 0.05  # the server and the test read the same clock
LATE = 1.0  # the contract: closed within a second of exp


def expiring(sub: str = "alice") -> tuple[str, int]:
    """A token (scope admin) expiring 1.5 to 2.5 seconds from now, and its ``exp``."""
    ttl = 2 if time.time() % 1 < 0.5 else 3  # exp is a whole second
    token = mint_token(SECRET, sub, ttl, ["admin"])
    return token, jwt.decode(token, options={"verify_signature": False})["exp"]


def open_gauge() -> float:
    return REGISTRY.get_sample_value("websocket_connections_open") or 0.0


# -- The guard's deadline itself ------------------------------------------------------------

ACCEPT: Message = {"type": "websocket.accept"}
EXPIRED_CLOSE = close_message(TOKEN_EXPIRED)
{%- if cookiecutter.rejection_strategy == "accept_then_close" %}
# The reason as JSON, then the close frame (what every refusal after accept sends).
REASON = json.dumps({"error": TOKEN_EXPIRED.code, "detail": TOKEN_EXPIRED.message})
EXPIRY = [{"type": "websocket.send", "text": REASON}, EXPIRED_CLOSE]
{%- else %}
EXPIRY = [EXPIRED_CLOSE]  # after accept, a refusal is a close frame
{%- endif %}


class OneAdmission:
    """Stands in for the pipeline: admits once, as given; gives leases back to ``store``."""

    def __init__(self, admitted: Admitted, store: MemoryStore | None = None) -> None:
        self.admitted = admitted
        self.store = store or MemoryStore()
        self.opaque = False

    async def admit(self, *_args: object) -> Admitted:
        return self.admitted

    async def release(self, admitted: Admitted) -> None:
        if admitted.lease is not None:
            await self.store.release_lease(admitted.lease)


def admitted(expires_in: float | None, lease: Lease | None = None) -> Admitted:
    expires_at = None if expires_in is None else time.time() + expires_in
    identity = Identity(User("alice"), AuthCredentials(["admin"]), expires_at)
    return Admitted(identity, lease, select_bearer=False)


SCOPE = {"type": "websocket", "path": "/ws/test", "client": ("127.0.0.1", 50000)}


class Recorder:
    """An ASGI send that records messages; after the accept it may fail the way a
    server would, or hang like a client that stopped reading."""

    def __init__(self, failure: BaseException | None = None, hang: bool = False) -> None:
        self.messages: list[Message] = []
        self.failure = failure
        self.hang = hang

    async def __call__(self, message: Message) -> None:
        if self.messages:
            if self.hang:
                await asyncio.sleep(3600)  # the buffers are full
            if self.failure is not None:
                raise self.failure
        self.messages.append(message)


async def connect_message() -> Message:
    return {"type": "websocket.connect"}


def endpoint(*, swallow: bool = False, seconds: float = 10, fail: bool = False) -> Any:
    """An endpoint that accepts, then waits (careless ones swallow the cancellation)."""

    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        await receive()
        await send(ACCEPT)
        if fail:
            raise ValueError("endpoint bug")
        if swallow:
            with suppress(asyncio.CancelledError):
                await asyncio.sleep(seconds)
        else:
            await asyncio.sleep(seconds)

    return app


async def serve(admission: OneAdmission, send: Recorder, app: Any) -> None:
    await WebSocketGuard(app, admission)(dict(SCOPE), connect_message, send)  # type: ignore[arg-type]


def pending_timers() -> tuple[int, int]:
    """Timer handles on the loop, and connections waiting for a deadline."""
    load = loop_load()
    return load["timers"], load["deadlines"]


async def test_expiry_cancels_the_endpoint_and_closes_4401() -> None:
    send = Recorder()
    started = time.monotonic()
    await serve(OneAdmission(admitted(0.2)), send, endpoint())
    assert 0.15 < time.monotonic() - started < 1.0
    assert send.messages == [ACCEPT, *EXPIRY]
    assert (EXPIRED_CLOSE["code"], EXPIRED_CLOSE["reason"]) == EXPIRED


async def test_an_endpoint_that_swallows_the_cancellation_is_closed_too() -> None:
    send = Recorder()
    await serve(OneAdmission(admitted(0.1)), send, endpoint(swallow=True))
    assert send.messages == [ACCEPT, *EXPIRY]


@pytest.mark.parametrize(
    "failure",
    [OSError("client gone"), RuntimeError("already closed"), WebSocketDisconnect(1006)],
    ids=["client-left", "endpoint-closed-first", "disconnected"],
)
async def test_nobody_left_to_tell_is_not_an_error(failure: BaseException) -> None:
    await serve(OneAdmission(admitted(0.1)), Recorder(failure), endpoint())


async def test_a_client_that_stopped_reading_cannot_hold_the_connection(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(guard, "CLOSE_TIMEOUT", 0.2)
    gauge = open_gauge()
    started = time.monotonic()
    await serve(OneAdmission(admitted(0.1)), Recorder(hang=True), endpoint())
    assert time.monotonic() - started < 1.0
    assert open_gauge() == gauge


async def test_ending_first_leaves_no_timer_and_gives_the_lease_back() -> None:
    store = MemoryStore()
    before = pending_timers()
    for _ in range(50):
        lease = await store.acquire_lease("alice", 1)  # the only slot: free again each time
        assert lease is not None
        send = Recorder()
        await serve(OneAdmission(admitted(3600, lease), store), send, endpoint(seconds=0))
        assert send.messages == [ACCEPT]
        assert pending_timers() == before
    send = Recorder()
    await serve(OneAdmission(admitted(3600)), send, endpoint(fail=True, seconds=0))
    assert send.messages == [ACCEPT, {"type": "websocket.close", "code": 1011}]
    await serve(OneAdmission(admitted(None)), Recorder(), endpoint(seconds=0))
    assert pending_timers() == before


# -- On the wire: every strategy, every channel, every server ------------------------------


def issue_ticket(http_url: str, token: str) -> str:
    request = urllib.request.Request(  # noqa: S310
        http_url + "/ws/tickets", method="POST", headers={"authorization": f"Bearer {token}"}
    )
    with urllib.request.urlopen(request, timeout=5) as response:  # noqa: S310
        return json.loads(response.read())["ticket"]


async def open_with(server: Any, path: str, channel: str, token: str) -> ClientConnection:
    """A WebSocket to ``path`` presenting ``token`` through ``channel``."""
    url, options = server.ws_url + path, {}
    if channel == "header":
        options["additional_headers"] = {"authorization": f"Bearer {token}"}
    elif channel == "subprotocol":
        options["subprotocols"] = subprotocols_for(token)
    elif channel == "query":
        url += f"?token={token}"
    else:  # a ticket never extends the credential's life
        url += "?ticket=" + await asyncio.to_thread(issue_ticket, server.http_url, token)
    return await connect(url, **options)


async def until_closed(websocket: ClientConnection, chatty: bool) -> tuple[int, str, float]:
    """Talk (or just listen) until the server closes; (code, reason, Unix time)."""
    try:
        await websocket.send("hello")
        if await websocket.recv() != "hello":
            return 0, "no echo", time.time()
        while True:
            if chatty:  # mid-conversation when the token expires
                await websocket.send("more")
                await asyncio.sleep(0.02)
            await websocket.recv()
    except ConnectionClosed as closed:
        at = time.time()
        return (closed.rcvd.code, closed.rcvd.reason, at) if closed.rcvd else (1006, "", at)


async def expire_everywhere(server: Any) -> list[tuple[str, tuple[int, str, float]]]:
    """Connect on every path through every channel, and wait for each close."""
    token, exp = expiring()
    cases = [(path, channel) for path in PATHS for channel in CHANNELS]
    sockets = await asyncio.gather(*(open_with(server, p, c, token) for p, c in cases))
    ends = await asyncio.gather(
        *(until_closed(websocket, i % 2 == 0) for i, websocket in enumerate(sockets))
    )
    results = [
        (f"{path} via {channel}", end) for (path, channel), end in zip(cases, ends, strict=True)
    ]
    for case, (code, reason, at) in results:
        assert (code, reason) == EXPIRED, case
        assert exp - EARLY <= at <= exp + LATE, f"{case}: closed {at - exp:+.2f}s from exp"
    return results


async def test_live_connections_close_at_expiry(live_server: LiveServer) -> None:
    before = live_server.log.count("token_expired")
    results = await expire_everywhere(live_server)
    # One INFO line per connection the server closed, and nothing at ERROR.
    assert live_server.log.count("token_expired") - before >= len(results)
    live_server.assert_no_unexpected_errors()


def test_in_process_connections_close_at_expiry(
    client: TestClient, caplog: pytest.LogCaptureFixture
) -> None:
    token, exp = expiring()
    with ExitStack() as stack:
        sessions = []
        for path in PATHS:
            ticket = client.post("/ws/tickets", headers={"authorization": f"Bearer {token}"})
            for url, options in (
                (path, {"headers": {"authorization": f"Bearer {token}"}}),
                (path, {"subprotocols": subprotocols_for(token)}),
                (f"{path}?token={token}", {}),
                (f"{path}?ticket={ticket.json()['ticket']}", {}),
            ):
                session = stack.enter_context(client.websocket_connect(url, **options))
                session.send_text("hello")
                assert session.receive_text() == "hello"
                sessions.append(session)
        for session in sessions:
            told = []
            with pytest.raises(WebSocketDisconnect) as closed:  # noqa: PT012
                while True:  # some routes send the reason as JSON before the close
                    told.append(json.loads(session.receive_text()))
            assert (closed.value.code, closed.value.reason) == EXPIRED
            assert told in ([], [{"error": TOKEN_EXPIRED.code, "detail": TOKEN_EXPIRED.message}])
        assert exp - EARLY <= time.time() <= exp + LATE
    assert [r.getMessage() for r in caplog.records if r.levelno >= logging.ERROR] == []


# -- Nothing left behind ---------------------------------------------------------------------


def test_in_process_nothing_is_left_after_connections_end(client: TestClient) -> None:
    async def measure() -> dict[str, int]:
        return loop_load(client.app.state.governance)  # type: ignore[attr-defined]

    before = client.portal.call(measure)
    token = mint_token(SECRET, "alice", 3600, ["admin"])
    with ExitStack() as stack:
        for path in PATHS * 5:
            session = stack.enter_context(
                client.websocket_connect(path, headers={"authorization": f"Bearer {token}"})
            )
            session.send_text("hello")
            assert session.receive_text() == "hello"
        during = client.portal.call(measure)
        assert during["deadlines"] == before["deadlines"] + len(PATHS) * 5  # one deadline each
    assert wait_for(lambda: client.portal.call(measure), before) == before


def wait_for(measure: Callable[[], dict[str, int]], expected: dict[str, int]) -> dict[str, int]:
    """Poll until the load is back to ``expected``, or 12 s: a close takes a moment, and
    uvicorn keeps a timer of its own (10 s at most) on a connection whose peer has not
    yet answered the server's close, which a busy client can be slow to do."""
    deadline = time.monotonic() + 12
    while (load := measure()) != expected and time.monotonic() < deadline:
        time.sleep(0.05)
    return load


@pytest.fixture(scope="module", params=WS_IMPLEMENTATIONS)
def stats_server(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[LiveServer]:
    """The app with ``GET /test/loop`` on a real uvicorn, per ``--ws`` implementation.

    On asyncio's own loop: uvloop (uvicorn's default when installed) keeps its
    timers out of Python's sight; the app schedules the same handles on either.
    """
    workdir = tmp_path_factory.mktemp(f"loop-{request.param}")
    args = ("--loop", "asyncio")
    with LiveServer(workdir, ws=request.param, app="loop_stats_app:app", extra_args=args) as server:
        yield server
    server.assert_no_unexpected_errors()


def server_load(server: LiveServer) -> dict[str, int]:
    status, body = server.get("/test/loop")
    assert status == 200
    return json.loads(body)


async def test_live_nothing_is_left_after_connections_end(stats_server: LiveServer) -> None:
    before = await asyncio.to_thread(server_load, stats_server)
    long_lived = mint_token(SECRET, "alice", 3600, ["admin"])
    held = await asyncio.gather(
        *(open_with(stats_server, p, c, long_lived) for p in PATHS for c in CHANNELS * 2)
    )
    during = await asyncio.to_thread(server_load, stats_server)
    assert during["deadlines"] == before["deadlines"] + len(held)  # one deadline each

    async def client_closes(websocket: ClientConnection) -> None:
        async with websocket:
            await websocket.send("hello")
            assert await websocket.recv() == "hello"

    async def client_vanishes(websocket: ClientConnection) -> None:
        await websocket.send("hello")
        await websocket.recv()
        websocket.transport.abort()  # no close frame: the TCP connection just drops

    await asyncio.gather(
        *(client_closes(websocket) for websocket in held[len(PATHS) :]),
        *(client_vanishes(websocket) for websocket in held[: len(PATHS)]),
        expire_everywhere(stats_server),  # and these the server closes at exp
    )
    after = await asyncio.to_thread(wait_for, lambda: server_load(stats_server), before)
    assert after == before
    stats_server.assert_no_unexpected_errors()
