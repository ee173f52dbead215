"""Accept-then-close through Starlette's TestClient: JSON message, close code, reason."""

import logging

import pytest
from fastapi import FastAPI, WebSocket
from fastapi.testclient import TestClient
from starlette.websockets import WebSocketDisconnect
from {{ cookiecutter.package_name }}.policy import Rejected, Rejection

from {{ cookiecutter.package_name }}.accept_then_close import accept_then_close, trim_reason
from {{ cookiecutter.package_name }}.paths import ACCEPT_THEN_CLOSE_PREFIX

from cases import REFUSED

ECHO = f"{ACCEPT_THEN_CLOSE_PREFIX}/echo"


@pytest.mark.parametrize(("headers", "query", "expected"), REFUSED)
def test_refusal_is_a_message_then_a_close_code(
    client: TestClient, headers: dict[str, str], query: str, expected: Rejection
) -> None:
    with client.websocket_connect(ECHO + query, headers=dict(headers)) as websocket:
        assert websocket.receive_json() == {"error": expected.code, "detail": expected.message}
        with pytest.raises(WebSocketDisconnect) as info:
            websocket.receive_text()
    assert info.value.code == 4000 + expected.status
    assert info.value.reason == expected.code


def crashing_app() -> FastAPI:
    app = FastAPI()

    @app.websocket("/crash")
    async def crash(websocket: WebSocket) -> None:
        async with accept_then_close(websocket):
            await websocket.receive_text()
            raise RuntimeError("database password is hunter2")

    @app.websocket("/refuse-later")
    async def refuse_later(websocket: WebSocket) -> None:
        async with accept_then_close(websocket):
            await websocket.receive_text()
            raise Rejected(Rejection(429, "slow_down_" + "é" * 100, "Too many messages."))

    return app


def test_unexpected_exception_closes_with_1011_and_stays_server_side(
    caplog: pytest.LogCaptureFixture,
) -> None:
    client = TestClient(crashing_app())
    with client, client.websocket_connect("/crash") as websocket:
        websocket.send_text("boom")
        with pytest.raises(WebSocketDisconnect) as info:
            websocket.receive_text()
    assert info.value.code == 1011
    assert "hunter2" not in info.value.reason
    [record] = [r for r in caplog.records if r.levelno == logging.ERROR]
    assert record.exc_info is not None
    assert "hunter2" in str(record.exc_info[1])


def test_a_rejection_after_the_conversation_started_is_delivered_too() -> None:
    client = TestClient(crashing_app())
    with client, client.websocket_connect("/refuse-later") as websocket:
        websocket.send_text("one too many")
        assert websocket.receive_json()["error"].startswith("slow_down_")
        with pytest.raises(WebSocketDisconnect) as info:
            websocket.receive_text()
    assert info.value.code == 4429
    assert len(info.value.reason.encode()) <= 123


@pytest.mark.parametrize(
    ("reason", "expected"),
    [("short", "short"), ("x" * 200, "x" * 123), ("é" * 62, "é" * 61), ("", "")],
)
def test_trim_reason_keeps_123_bytes_of_whole_characters(reason: str, expected: str) -> None:
    assert trim_reason(reason) == expected
    assert len(trim_reason(reason).encode()) <= 123
