"""Accept-then-close through Starlette's TestClient: JSON message, close code, reason, identity."""

import logging

import pytest
from fastapi import FastAPI, WebSocket
from fastapi.testclient import TestClient
from starlette.websockets import WebSocketDisconnect

from {{ cookiecutter.package_name }}.guard import Rejected
from {{ cookiecutter.package_name }}.main import create_app
from {{ cookiecutter.package_name }}.rejections import (
    INSUFFICIENT_SCOPE,
    Rejection,
    close_message,
)
{%- if cookiecutter.rejection_strategy == "both" %}
from {{ cookiecutter.package_name }}.requirements import (
    refuse_after_accept,
)
{%- endif %}
from {{ cookiecutter.package_name }}.settings import Settings

from cases import ACCEPT_THEN_CLOSE_PREFIX, ADMIN_ECHO_ENDPOINTS, BEARER, ECHO_ENDPOINTS, REFUSED
from credentials import IDENTITY, SECOND_TOKEN

ECHO = ECHO_ENDPOINTS["accept_then_close"]
ADMIN_ECHO = ADMIN_ECHO_ENDPOINTS["accept_then_close"]


def refusal(
    client: TestClient,
    url: str,
    headers: dict[str, str] | None = None,
    subprotocols: list[str] | None = None,
) -> tuple[dict[str, str] | None, int, str]:
    """(first message or None, close code, close reason) of a refused connection."""
    with client.websocket_connect(
        url, headers=dict(headers or {}), subprotocols=subprotocols
    ) as ws:
        try:
            message = ws.receive_json()
        except WebSocketDisconnect as exc:
            return None, exc.code, exc.reason
        with pytest.raises(WebSocketDisconnect) as info:
            ws.receive_text()
    return message, info.value.code, info.value.reason


@pytest.mark.parametrize(("headers", "query", "subprotocols", "expected"), REFUSED)
def test_refusal_is_a_message_then_a_close_code(
    client: TestClient,
    headers: dict[str, str],
    query: str,
    subprotocols: list[str],
    expected: Rejection,
) -> None:
    message, code, reason = refusal(client, ECHO + query, headers, subprotocols)
    assert message == {"error": expected.code, "detail": expected.message}
    assert code == 4000 + expected.status
    assert reason == expected.code


def test_a_route_needing_a_scope_refuses_a_credential_without_it(client: TestClient) -> None:
    message, code, reason = refusal(client, ADMIN_ECHO, {"authorization": f"Bearer {SECOND_TOKEN}"})
    assert message == {"error": INSUFFICIENT_SCOPE.code, "detail": INSUFFICIENT_SCOPE.message}
    assert (code, reason) == (4403, "insufficient_scope")
    with client.websocket_connect(ADMIN_ECHO, headers=dict(BEARER)) as websocket:
        websocket.send_text("admin")
        assert websocket.receive_text() == "admin"


def test_refused_browser_client_gets_bearer_selected_too(client: TestClient) -> None:
    # Browsers fail a handshake whose offered protocols get no answer, so the
    # refusal they must be able to read needs "bearer" selected as well.
    message, code, _ = refusal(client, ECHO, subprotocols=["bearer"])
    assert message is not None
    assert code == 4401


def test_endpoint_reads_who_connected(settings: Settings) -> None:
    app = create_app(settings)

    @app.websocket_route(f"{ACCEPT_THEN_CLOSE_PREFIX}/whoami")
{%- if cookiecutter.rejection_strategy == "both" %}
    @refuse_after_accept
{%- endif %}
    async def whoami(websocket: WebSocket) -> None:
        await websocket.accept()
        await websocket.send_json(
            {"identity": websocket.user.identity, "scopes": websocket.auth.scopes}
        )

    with (
        TestClient(app) as client,
        client.websocket_connect(
            f"{ACCEPT_THEN_CLOSE_PREFIX}/whoami", headers=dict(BEARER)
        ) as websocket,
    ):
        assert websocket.receive_json() == {"identity": IDENTITY, "scopes": ["admin"]}


def test_opaque_mode_closes_4404_with_nothing_to_read(settings: Settings) -> None:
    opaque = settings.model_copy(update={"opaque_refusals": True})
    with TestClient(create_app(opaque)) as client:
        assert refusal(client, ECHO) == (None, 4404, "")


def crashing_app(settings: Settings) -> FastAPI:
    app = create_app(settings)

    @app.websocket_route("/crash")
{%- if cookiecutter.rejection_strategy == "both" %}
    @refuse_after_accept
{%- endif %}
    async def crash(websocket: WebSocket) -> None:
        await websocket.accept()
        await websocket.receive_text()
        raise RuntimeError("database password is hunter2")

    @app.websocket_route("/refuse-later")
{%- if cookiecutter.rejection_strategy == "both" %}
    @refuse_after_accept
{%- endif %}
    async def refuse_later(websocket: WebSocket) -> None:
        await websocket.accept()
        await websocket.receive_text()
        raise Rejected(Rejection(429, "slow_down_" + "é" * 100, "Too many messages."))

    return app


def test_unexpected_exception_closes_with_1011_and_stays_server_side(
    settings: Settings, caplog: pytest.LogCaptureFixture
) -> None:
    client = TestClient(crashing_app(settings))
    with client, client.websocket_connect("/crash", headers=dict(BEARER)) as websocket:
        websocket.send_text("boom")
        with pytest.raises(WebSocketDisconnect) as info:
            websocket.receive_text()
    assert info.value.code == 1011
    assert "hunter2" not in info.value.reason
    [record] = [r for r in caplog.records if r.levelno == logging.ERROR]
    assert record.exc_info is not None
    assert "hunter2" in str(record.exc_info[1])


def test_a_rejection_after_the_conversation_started_is_delivered_too(settings: Settings) -> None:
    client = TestClient(crashing_app(settings))
    with client, client.websocket_connect("/refuse-later", headers=dict(BEARER)) as websocket:
        websocket.send_text("one too many")
        assert websocket.receive_json()["error"].startswith("slow_down_")
        with pytest.raises(WebSocketDisconnect) as info:
            websocket.receive_text()
    assert info.value.code == 4429
    assert len(info.value.reason.encode()) <= 123


@pytest.mark.parametrize(
    ("code", "expected"),
    [("short", "short"), ("x" * 200, "x" * 123), ("é" * 62, "é" * 61), ("", "")],
)
def test_the_close_reason_keeps_123_bytes_of_whole_characters(code: str, expected: str) -> None:
    message = close_message(Rejection(429, code, "Too many."))
    assert message["reason"] == expected
    assert message["code"] == 4429
