"""Admitted clients get the echo endpoint(s), whatever the strategy: in-process and on the wire."""

import pytest
from fastapi.testclient import TestClient
from starlette.websockets import WebSocketDisconnect
from websockets.exceptions import ConnectionClosed
from websockets.sync.client import connect

from cases import ADMITTED, BEARER, ECHO_PATHS, subprotocols_for
from credentials import TOKEN
from live_server import LiveServer


@pytest.mark.parametrize("path", ECHO_PATHS)
@pytest.mark.parametrize(("headers", "query", "subprotocols"), ADMITTED)
def test_admitted_clients_echo_text_and_bytes(
    client: TestClient, path: str, headers: dict[str, str], query: str, subprotocols: list[str]
) -> None:
    with client.websocket_connect(
        path + query, headers=dict(headers), subprotocols=subprotocols
    ) as websocket:
        websocket.send_text("hello")
        assert websocket.receive_text() == "hello"
        websocket.send_bytes(b"\x00\xff")
        assert websocket.receive_bytes() == b"\x00\xff"


@pytest.mark.parametrize("path", ECHO_PATHS)
def test_subprotocol_credential_selects_bearer_and_never_echoes_it(
    client: TestClient, path: str
) -> None:
    with client.websocket_connect(path, subprotocols=subprotocols_for(TOKEN)) as websocket:
        assert websocket.accepted_subprotocol == "bearer"
        websocket.send_text("hello")
        assert websocket.receive_text() == "hello"


@pytest.mark.parametrize("path", ECHO_PATHS)
def test_oversized_message_closes_with_1009(client: TestClient, path: str) -> None:
    with client.websocket_connect(path, headers=dict(BEARER)) as websocket:
        websocket.send_text("x" * 1025)  # the tests' WS_MAX_MESSAGE_BYTES is 1024
        with pytest.raises(WebSocketDisconnect) as info:
            websocket.receive_text()
    assert info.value.code == 1009


@pytest.mark.parametrize("path", ECHO_PATHS)
@pytest.mark.parametrize(("headers", "query", "subprotocols"), ADMITTED)
def test_admitted_clients_upgrade_and_echo_on_the_wire(
    live_server: LiveServer, path: str, headers: dict[str, str], query: str, subprotocols: list[str]
) -> None:
    with connect(
        live_server.ws_url + path + query,
        additional_headers=headers,
        subprotocols=subprotocols or None,  # type: ignore[arg-type]
    ) as ws:
        assert ws.response.status_code == 101
        ws.send("hello")
        assert ws.recv(timeout=5) == "hello"
        ws.send(b"\x00\xff")
        assert ws.recv(timeout=5) == b"\x00\xff"


@pytest.mark.parametrize("path", ECHO_PATHS)
def test_client_closing_normally_gets_1000(live_server: LiveServer, path: str) -> None:
    with connect(live_server.ws_url + path, additional_headers=BEARER) as ws:
        ws.send("bye")
        assert ws.recv(timeout=5) == "bye"
        ws.close()
        with pytest.raises(ConnectionClosed) as info:
            ws.recv(timeout=5)
    assert info.value.rcvd is not None
    assert info.value.rcvd.code == 1000
