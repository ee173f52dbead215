"""In-band refresh on the wire: ``{"type": "auth.refresh", "token": ...}`` moves a live
connection's expiry, the endpoint never sees it, and a bad refresh closes the
connection (another identity or an invalid token 4403, an expired one 4401).
"""

import json
import time
from collections.abc import Iterator

import jwt
import pytest
from websockets.exceptions import ConnectionClosed
from websockets.sync.client import ClientConnection, connect

from {{ cookiecutter.package_name }}.auth import mint_token

from cases import ECHO_PATHS
from credentials import SECRET, WRONG_TOKEN
from live_server import LiveServer

LATE = 1.0  # the contract: closed within a second of exp
SLACK = 0.5


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveServer]:
    with LiveServer(tmp_path_factory.mktemp("refresh")) as server:
        yield server
    server.assert_no_unexpected_errors()


def exp_of(token: str) -> float:
    return float(jwt.decode(token, options={"verify_signature": False})["exp"])


def open_ws(server: LiveServer, path: str, token: str) -> ClientConnection:
    bearer = {"authorization": f"Bearer {token}"}
    return connect(f"{server.ws_url}{path}", additional_headers=bearer)


def refresh(ws: ClientConnection, token: str) -> None:
    ws.send(json.dumps({"type": "auth.refresh", "token": token}))


def close_of(ws: ClientConnection, timeout: float) -> tuple[int, str]:
    with pytest.raises(ConnectionClosed) as closed:  # noqa: PT012 (reads until the close)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            ws.recv(timeout=max(0.01, deadline - time.monotonic()))
    received = closed.value.rcvd
    assert received is not None
    return received.code, received.reason


@pytest.mark.parametrize("path", ECHO_PATHS)
def test_a_refreshed_connection_outlives_its_first_token(server: LiveServer, path: str) -> None:
    first = mint_token(SECRET, "alice", 3)
    with open_ws(server, path, first) as ws:
        time.sleep(1)
        second = mint_token(SECRET, "alice", 5)
        refresh(ws, second)
        answer = json.loads(ws.recv(timeout=5))
        assert answer["type"] == "auth.refreshed"
        assert 3 <= answer["expires_in"] <= 5
        # Past the first token's exp: still served, and the echo never saw the refresh.
        time.sleep(max(0, exp_of(first) - time.time()) + 0.5)
        ws.send("still here")
        assert ws.recv(timeout=5) == "still here"
        assert close_of(ws, 10) == (4401, "token_expired")
        closed_after = time.time() - exp_of(second)
        assert -0.05 <= closed_after <= LATE + SLACK


@pytest.mark.parametrize(
    ("token", "closed"),
    [
        pytest.param(mint_token(SECRET, "bob", 3600), (4403, "invalid_token"), id="other-identity"),
        pytest.param(WRONG_TOKEN, (4403, "invalid_token"), id="bad-signature"),
        pytest.param(mint_token(SECRET, "alice", -10), (4401, "token_expired"), id="expired"),
        pytest.param(None, (4403, "invalid_token"), id="no-token"),
    ],
)
def test_a_bad_refresh_closes(
    server: LiveServer, token: str | None, closed: tuple[int, str]
) -> None:
    with open_ws(server, ECHO_PATHS[0], mint_token(SECRET, "alice", 60)) as ws:
        ws.send(json.dumps({"type": "auth.refresh", "token": token}))
        assert close_of(ws, 5) == closed


def test_only_messages_shaped_as_control_messages_are_read(server: LiveServer) -> None:
    ordinary = [
        "auth.refresh",
        '{"token": "x", "type": "auth.refresh"}',  # "type" not first: the endpoint's
        '{"type": "auth.other"}',
        '{"type": "chat", "text": "auth.refresh"}',
        '{"type":"auth.',  # not JSON
    ]
    with open_ws(server, ECHO_PATHS[0], mint_token(SECRET, "alice", 60)) as ws:
        for text in ordinary:
            ws.send(text)
            assert ws.recv(timeout=5) == text
