"""Governed connections on the wire: idle timeout, maximum lifetime, messages per
connection, revocation and tickets per identity, on every echo route of this
project (a real uvicorn, memory store). After accept every one of them is a close
frame{% if cookiecutter.rejection_strategy != "pre_accept" %} (accept-then-close routes send the JSON reason first){% endif %}.
"""

import asyncio
import contextlib
import json
import os
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest
from websockets.asyncio.client import connect as connect_async
from websockets.exceptions import ConnectionClosed, InvalidStatus
from websockets.sync.client import ClientConnection, connect

from cases import ECHO_ENDPOINTS
from credentials import AUTH_ENV, SECOND_TOKEN, TOKEN, credential_for
from live_server import LiveServer

STRATEGIES = list(ECHO_ENDPOINTS)
{%- if cookiecutter.rejection_strategy == "pre_accept" %}
SENDS_REASON: frozenset[str] = frozenset()  # after accept, a refusal is a close frame only
{%- else %}
SENDS_REASON = frozenset({"accept_then_close"})  # the JSON reason, then the close frame
{%- endif %}
IDLE = 1.0
LIFETIME = 3.0
MESSAGES = 30  # per connection and minute
SLACK = 1.0  # the server's timers are exact; this is for a busy machine

# Identities of these tests, with the scopes they need: {name: token}.
NAMES = {
    "root": ("admin",),
    "dave": (),
    "leaky": (),
    "leaky-revoked": (),
    **{f"carol-{strategy}": () for strategy in STRATEGIES},
}
TOKENS: dict[str, str] = {}
AUTH = dict(AUTH_ENV)
for name, scopes in NAMES.items():
    TOKENS[name], extra = credential_for(name, scopes)
    for variable, value in extra.items():  # each adds its entry to the project's list
        AUTH[variable] = AUTH[variable] + value.removeprefix(AUTH_ENV[variable])
ADMIN = {"authorization": f"Bearer {TOKENS['root']}"}


def server_env(**settings: str) -> dict[str, str]:
    return {**AUTH, **settings}


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveServer]:
    env = server_env(
        WS_IDLE_TIMEOUT_SECONDS=str(IDLE),
        WS_MAX_CONNECTION_SECONDS=str(LIFETIME),
        # A minute's window: a busy machine cannot spread a burst across windows.
        WS_MESSAGE_RATE_LIMIT=f"{MESSAGES}/minute",
        WS_TICKET_RATE_LIMIT="3/minute",
    )
    with LiveServer(tmp_path_factory.mktemp("governed"), env=env) as server:
        yield server
    server.assert_no_unexpected_errors()


def open_ws(server: LiveServer, path: str, token: str = TOKEN) -> ClientConnection:
    bearer = {"authorization": f"Bearer {token}"}
    return connect(f"{server.ws_url}{path}", additional_headers=bearer)


def closed_with(ws: ClientConnection, timeout: float) -> tuple[int, str, list[str]]:
    """Wait for the server's close: its code, its reason, and the messages before it."""
    messages: list[str] = []
    deadline = time.monotonic() + timeout
    with pytest.raises(ConnectionClosed) as closed:  # noqa: PT012 (reads until the close)
        while time.monotonic() < deadline:
            messages.append(str(ws.recv(timeout=max(0.01, deadline - time.monotonic()))))
    received = closed.value.rcvd
    assert received is not None, "the client closed, not the server"
    return received.code, received.reason, messages


def assert_reason(strategy: str, messages: list[str], code: str) -> None:
    if strategy in SENDS_REASON:
        assert json.loads(messages[-1])["error"] == code
    else:
        assert messages == []


def http(server: LiveServer, method: str, path: str, headers: dict[str, str], body: object = None):  # type: ignore[no-untyped-def]
    data = None if body is None else json.dumps(body).encode()
    request = urllib.request.Request(  # noqa: S310
        server.http_url + path, data=data, method=method, headers=headers
    )
    try:
        with urllib.request.urlopen(request, timeout=5) as response:  # noqa: S310
            raw = response.read()
            return response.status, json.loads(raw) if raw else None, dict(response.headers)
    except urllib.error.HTTPError as error:
        return error.code, json.loads(error.read()), dict(error.headers)


@pytest.mark.parametrize("strategy", STRATEGIES)
def test_a_silent_client_is_closed_4408_idle_timeout(server: LiveServer, strategy: str) -> None:
    with open_ws(server, ECHO_ENDPOINTS[strategy]) as ws:
        started = time.monotonic()
        code, reason, messages = closed_with(ws, IDLE + SLACK + 1)
        assert (code, reason) == (4408, "idle_timeout")
        assert IDLE - 0.05 <= time.monotonic() - started <= IDLE + SLACK
        assert_reason(strategy, messages, "idle_timeout")


@pytest.mark.parametrize("strategy", STRATEGIES)
def test_a_talking_client_lives_until_its_lifetime_then_4408(
    server: LiveServer, strategy: str
) -> None:
    with open_ws(server, ECHO_ENDPOINTS[strategy]) as ws:
        started = time.monotonic()
        with pytest.raises(ConnectionClosed) as closed:  # noqa: PT012 (talks until closed)
            while time.monotonic() - started < LIFETIME + SLACK:  # never idle for long
                ws.send("still here")
                ws.recv(timeout=5)  # the echo (or, at the end, the JSON reason)
                time.sleep(IDLE / 4)
        assert closed.value.rcvd is not None
        assert (closed.value.rcvd.code, closed.value.rcvd.reason) == (4408, "lifetime_exceeded")
        assert LIFETIME - 0.05 <= time.monotonic() - started <= LIFETIME + SLACK


@pytest.mark.parametrize("strategy", STRATEGIES)
def test_a_flood_of_messages_is_closed_4429(server: LiveServer, strategy: str) -> None:
    with open_ws(server, ECHO_ENDPOINTS[strategy]) as ws:
        for _ in range(MESSAGES - 1):  # within the limit: all echoed
            ws.send("ok")
        assert [ws.recv(timeout=5) for _ in range(MESSAGES - 1)] == ["ok"] * (MESSAGES - 1)
        # The server may close before the client has sent them all: so much the better.
        with contextlib.suppress(ConnectionClosed):
            for _ in range(MESSAGES):
                ws.send("more")
            ws.send("far too many")
        code, reason, messages = closed_with(ws, 5)
        assert (code, reason) == (4429, "too_many_messages")
        assert "far too many" not in messages  # the endpoint never got it
        assert messages.count("more") <= 2  # the limit's last (two at a window's edge), no more
        reason = [message for message in messages if message != "more"]
        assert_reason(strategy, reason, "too_many_messages")


@pytest.mark.parametrize("strategy", STRATEGIES)
def test_revocation_closes_refuses_spares_others_and_lifts(
    server: LiveServer, strategy: str
) -> None:
    path = ECHO_ENDPOINTS[strategy]
    identity = f"carol-{strategy}"
    token = TOKENS[identity]
    with open_ws(server, path, token) as carol, open_ws(server, path, SECOND_TOKEN) as bob:
        status, body, _ = http(server, "POST", "/ws/revocations", ADMIN, {"identity": identity})
        revoked_at = time.monotonic()
        assert (status, body) == (202, {"identity": identity, "expires_in": 3600})
        code, reason, messages = closed_with(carol, 2)
        assert (code, reason) == (4403, "revoked")
        assert time.monotonic() - revoked_at < 1.0 + SLACK  # the contract: within a second
        assert_reason(strategy, messages, "revoked")
        bob.send("unaffected")
        assert bob.recv(timeout=5) == "unaffected"
    with urllib.request.urlopen(server.http_url + "/metrics", timeout=5) as response:  # noqa: S310
        metrics = response.read().decode()
    labels = f'code="revoked",strategy="{strategy}"'
    assert "websocket_refusals_total{" + labels + "}" in metrics  # closures are counted
    # Its new handshakes and ticket requests are refused.
    if strategy in SENDS_REASON:
        with open_ws(server, path, token) as again:
            code, reason, _ = closed_with(again, 5)
            assert (code, reason) == (4403, "revoked")
    else:
        with pytest.raises(InvalidStatus) as refused:
            open_ws(server, path, token)
        assert refused.value.response.status_code == 403
        assert json.loads(refused.value.response.body)["code"] == "revoked"
    status, body, _ = http(server, "POST", "/ws/tickets", {"authorization": f"Bearer {token}"})
    assert (status, body["code"]) == (403, "revoked")
    # Lifted: admitted again.
    status, body, _ = http(server, "DELETE", f"/ws/revocations/{identity}", ADMIN)
    assert (status, body) == (204, None)
    with open_ws(server, path, token) as carol:
        carol.send("back")
        assert carol.recv(timeout=5) == "back"


def test_revocation_needs_the_admin_scope(server: LiveServer) -> None:
    body = {"identity": "carol", "seconds": 5}
    status, answer, headers = http(server, "POST", "/ws/revocations", {}, body)
    assert (status, answer["code"]) == (401, "missing_token")
    assert headers["www-authenticate"].startswith("Bearer")
    bob = {"authorization": f"Bearer {SECOND_TOKEN}"}
    status, answer, _ = http(server, "POST", "/ws/revocations", bob, body)
    assert (status, answer["code"]) == (403, "insufficient_scope")
    status, answer, _ = http(server, "DELETE", "/ws/revocations/carol", bob)
    assert (status, answer["code"]) == (403, "insufficient_scope")
    for bad in ({"identity": ""}, {"identity": "x", "seconds": 0}, {"seconds": 5}, ["x"]):
        status, answer, _ = http(server, "POST", "/ws/revocations", ADMIN, bad)
        assert (status, answer["code"]) == (400, "invalid_request")
    status, answer, _ = http(server, "POST", "/ws/revocations", ADMIN, body)
    assert (status, answer) == (202, {"identity": "carol", "expires_in": 5})
    assert "revoked carol for 5 s, by root" in server.log


def test_tickets_are_limited_per_identity(server: LiveServer) -> None:
    dave = {"authorization": f"Bearer {TOKENS['dave']}"}
    for _ in range(3):
        assert http(server, "POST", "/ws/tickets", dave)[0] == 201
    status, answer, headers = http(server, "POST", "/ws/tickets", dave)
    assert (status, answer["code"]) == (429, "rate_limited")
    assert int(headers["retry-after"]) >= 1
    # Another identity, same address: its own budget.
    bob = {"authorization": f"Bearer {SECOND_TOKEN}"}
    assert http(server, "POST", "/ws/tickets", bob)[0] == 201


def test_settings_take_off(tmp_path: Path) -> None:
    env = server_env(
        WS_IDLE_TIMEOUT_SECONDS="off", WS_MAX_CONNECTION_SECONDS="off", WS_MESSAGE_RATE_LIMIT="off"
    )
    with LiveServer(tmp_path, env=env) as server:
        path = next(iter(ECHO_ENDPOINTS.values()))
        with open_ws(server, path) as ws:
            for _ in range(300):
                ws.send("x")
            assert [ws.recv(timeout=5) for _ in range(300)] == ["x"] * 300
    server.assert_no_unexpected_errors()


# -- Nothing is left behind ------------------------------------------------------------------

# Connections per way of ending; LEAK_CONNECTIONS=10000 in the environment for the
# issue's full run (the default keeps the suite quick on two shared cores).
PER_WAY = int(os.environ.get("LEAK_CONNECTIONS", "1200")) // 6
BATCH = 40
REVOCATIONS = "/ws/revocations"
LEAK_CAP = BATCH  # every way runs BATCH at a time: a leaked lease would refuse the next
LEAK_MESSAGES = 20  # per connection and minute


def loop_load(server: LiveServer) -> dict[str, int]:
    with urllib.request.urlopen(server.http_url + "/test/loop", timeout=5) as response:  # noqa: S310
        return json.loads(response.read())  # type: ignore[no-any-return]


async def end_one(server: LiveServer, path: str, way: str) -> str:
    identity = "leaky-revoked" if way == "revoked" else "leaky"
    bearer = {"authorization": f"Bearer {TOKENS[identity]}"}
    async with connect_async(f"{server.ws_url}{path}", additional_headers=bearer) as ws:
        if way == "client-close":
            await ws.send("bye")
            await ws.recv()
            return "client"
        if way == "vanish":
            await ws.send("bye")
            await ws.recv()
            ws.transport.abort()  # no close frame: the TCP connection drops
            return "vanished"
        if way == "flood":
            for _ in range(2 * LEAK_MESSAGES):
                await ws.send("x")
        with contextlib.suppress(ConnectionClosed):
            while True:
                if way == "lifetime":  # never idle: only its age ends it
                    await ws.send("x")
                    await asyncio.sleep(0.2)
                await ws.recv()
        return ws.close_reason or ""


async def end_many(server: LiveServer, way: str) -> set[str]:
    reasons: set[str] = set()
    paths = list(ECHO_ENDPOINTS.values())
    for start in range(0, PER_WAY, BATCH):
        count = min(BATCH, PER_WAY - start)
        ending = [end_one(server, paths[i % len(paths)], way) for i in range(count)]
        if way == "revoked":
            tasks = [asyncio.create_task(one) for one in ending]
            await asyncio.sleep(0.3)
            revoke = {"identity": "leaky-revoked", "seconds": 60}
            revoked = await asyncio.to_thread(http, server, "POST", REVOCATIONS, ADMIN, revoke)
            assert revoked[0] == 202
            reasons |= set(await asyncio.gather(*tasks))
            lift = f"{REVOCATIONS}/leaky-revoked"
            assert (await asyncio.to_thread(http, server, "DELETE", lift, ADMIN))[0] == 204
        else:
            reasons |= set(await asyncio.gather(*ending))
    return reasons


@pytest.fixture(scope="module")
def stats_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveServer]:
    env = server_env(
        WS_IDLE_TIMEOUT_SECONDS="0.5",
        WS_MAX_CONNECTION_SECONDS="1",
        WS_MESSAGE_RATE_LIMIT=f"{LEAK_MESSAGES}/minute",
        WS_MAX_CONNECTIONS_PER_IDENTITY=str(LEAK_CAP),
    )
    workdir = tmp_path_factory.mktemp("leaks")
    args = ("--loop", "asyncio")  # uvloop keeps its timers out of Python's sight
    with LiveServer(workdir, app="loop_stats_app:app", env=env, extra_args=args) as server:
        yield server
    server.assert_no_unexpected_errors()


async def test_nothing_is_left_after_connections_end_every_way(stats_server: LiveServer) -> None:
    before = await asyncio.to_thread(loop_load, stats_server)
    started = time.monotonic()
    outcomes = {}
    for way in ("client-close", "vanish", "idle", "lifetime", "flood", "revoked"):
        outcomes[way] = await end_many(stats_server, way)
    print(f"{6 * PER_WAY} connections ended in {time.monotonic() - started:.1f} s: {outcomes}")
    assert outcomes["idle"] == {"idle_timeout"}
    assert outcomes["flood"] == {"too_many_messages"}
    assert outcomes["revoked"] == {"revoked"}
    assert outcomes["lifetime"] == {"lifetime_exceeded"}
    # uvicorn's own close timer (10 s at most) may wait on a busy client's answer.
    deadline = time.monotonic() + 12
    while (after := await asyncio.to_thread(loop_load, stats_server)) != before:
        assert time.monotonic() < deadline, f"left behind: {before} -> {after}"
        await asyncio.sleep(0.1)
    # Every lease came back: the cap's worth of connections opens at once.
    bearer = {"authorization": f"Bearer {TOKENS['leaky']}"}
    url = f"{stats_server.ws_url}{next(iter(ECHO_ENDPOINTS.values()))}"
    held = [await connect_async(url, additional_headers=bearer) for _ in range(LEAK_CAP)]
    for ws in held:
        await ws.send("counted")
        assert await ws.recv() == "counted"
        await ws.close()
