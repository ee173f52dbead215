"""Accept-then-close on the wire: a real uvicorn, real clients, every ``--ws`` implementation."""

import json
from pathlib import Path

import pytest
from websockets.exceptions import ConnectionClosed
from websockets.sync.client import connect

from {{ cookiecutter.package_name }}.rejections import Rejection

from cases import BEARER, ECHO_ENDPOINTS, REFUSED, subprotocols_for
from credentials import TOKEN
from live_server import LiveServer

ECHO = ECHO_ENDPOINTS["accept_then_close"]


@pytest.mark.parametrize(("headers", "query", "subprotocols", "expected"), REFUSED)
def test_refusal_arrives_as_message_then_close_frame(
    live_server: LiveServer,
    headers: dict[str, str],
    query: str,
    subprotocols: list[str],
    expected: Rejection,
) -> None:
    with connect(
        live_server.ws_url + ECHO + query,
        additional_headers=headers,
        subprotocols=subprotocols or None,  # type: ignore[arg-type]
    ) as ws:
        assert ws.response.status_code == 101
        message = json.loads(ws.recv(timeout=5))
        assert message == {"error": expected.code, "detail": expected.message}
        with pytest.raises(ConnectionClosed) as info:
            ws.recv(timeout=5)
    assert info.value.rcvd is not None
    assert info.value.rcvd.code == 4000 + expected.status
    assert info.value.rcvd.reason == expected.code


def test_subprotocol_credential_gets_bearer_selected(live_server: LiveServer) -> None:
    with connect(live_server.ws_url + ECHO, subprotocols=subprotocols_for(TOKEN)) as ws:  # type: ignore[arg-type]
        assert ws.subprotocol == "bearer"
        ws.send("hello")
        assert ws.recv(timeout=5) == "hello"


def test_a_crash_after_accept_closes_1011_and_stays_in_the_server_log(tmp_path: Path) -> None:
    from crash_app import SECRET_DETAIL

    with LiveServer(tmp_path, app="crash_app:app") as server:
        with connect(f"{server.ws_url}/ws/test/crash", additional_headers=BEARER) as ws:
            ws.send("boom")
            with pytest.raises(ConnectionClosed) as info:
                ws.recv(timeout=5)
        assert info.value.rcvd is not None
        assert info.value.rcvd.code == 1011
        assert SECRET_DETAIL not in info.value.rcvd.reason
    assert "ERROR:    WebSocket endpoint /ws/test/crash failed" in server.error_lines()
    assert f"RuntimeError: {SECRET_DETAIL}" in server.log  # the traceback, server-side only
