"""Pre-accept denial on the wire: a real uvicorn, real clients, every ``--ws`` implementation."""

import json
import time
from pathlib import Path

import pytest
from websockets.exceptions import InvalidStatus
from websockets.sync.client import connect

from {{ cookiecutter.package_name }}.rejections import Rejection

from cases import BEARER, ECHO_ENDPOINTS, PRE_ACCEPT_PREFIX, REFUSED, subprotocols_for
from credentials import TOKEN
from live_server import LiveServer
from wire import exchange, handshake_request

ECHO = ECHO_ENDPOINTS["pre_accept"]


@pytest.mark.parametrize(("headers", "query", "subprotocols", "expected"), REFUSED)
def test_refusal_arrives_as_http_status_and_json(
    live_server: LiveServer,
    headers: dict[str, str],
    query: str,
    subprotocols: list[str],
    expected: Rejection,
) -> None:
    with (
        pytest.raises(InvalidStatus) as info,
        connect(
            live_server.ws_url + ECHO + query,
            additional_headers=headers,
            subprotocols=subprotocols or None,  # type: ignore[arg-type]
        ),
    ):
        pass
    response = info.value.response
    assert response.status_code == expected.status
    assert response.headers["content-type"] == "application/json"
    assert json.loads(response.body) == {"detail": expected.message, "code": expected.code}
    for name, value in expected.headers:
        assert response.headers[name] == value


def test_status_line_and_headers_on_a_raw_socket(live_server: LiveServer) -> None:
    response = exchange(live_server.port, handshake_request(ECHO, port=live_server.port))
    # The reason phrase is optional (RFC 9112): wsproto sends "HTTP/1.1 401 ".
    assert response.status_line.split(" ")[:2] == ["HTTP/1.1", "401"]
    assert response.headers["www-authenticate"] == 'Bearer realm="websocket"'
    assert "upgrade" not in response.headers
    assert json.loads(response.body)["code"] == "missing_token"


def test_subprotocol_credential_gets_bearer_and_only_bearer_back(live_server: LiveServer) -> None:
    request = handshake_request(
        ECHO, {"Sec-WebSocket-Protocol": ", ".join(subprotocols_for(TOKEN))}, port=live_server.port
    )
    response = exchange(live_server.port, request)
    assert response.status == 101
    assert response.headers["sec-websocket-protocol"] == "bearer"


def test_unknown_path_is_a_404(live_server: LiveServer) -> None:
    request = handshake_request(f"{PRE_ACCEPT_PREFIX}/typo", BEARER, port=live_server.port)
    response = exchange(live_server.port, request)
    assert response.status == 404
    assert json.loads(response.body)["code"] == "not_found"


def test_a_server_without_the_denial_extension_gets_a_bare_403_at_once(tmp_path: Path) -> None:
    # no_denial_extension_app.py hides the extension, as daphne would: the guard must
    # fall back to a close (-> 403 immediately) instead of a denial the server ignores.
    with LiveServer(tmp_path, app="no_denial_extension_app:app") as server:
        started = time.monotonic()
        with pytest.raises(InvalidStatus) as info, connect(server.ws_url + ECHO):
            pass
        assert time.monotonic() - started < 2
        assert info.value.response.status_code == 403
        with connect(server.ws_url + ECHO, additional_headers=BEARER) as ws:
            ws.send("hello")
            assert ws.recv(timeout=5) == "hello"
    server.assert_no_unexpected_errors()
