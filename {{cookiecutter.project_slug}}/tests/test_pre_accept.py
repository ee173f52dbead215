"""Pre-accept denial through Starlette's TestClient: status, JSON body, headers, identity."""

import pytest
from fastapi import FastAPI, WebSocket
from fastapi.testclient import TestClient
from starlette.testclient import WebSocketDenialResponse
from starlette.types import Receive, Scope, Send
from starlette.websockets import WebSocketDisconnect

from {{ cookiecutter.package_name }} import pre_accept
from {{ cookiecutter.package_name }}.main import create_app
from {{ cookiecutter.package_name }}.pre_accept import (
    CACHED_DENIALS,
    denial_messages,
)
from {{ cookiecutter.package_name }}.rejections import (
    INSUFFICIENT_SCOPE,
    Rejection,
)
from {{ cookiecutter.package_name }}.settings import Settings

from cases import ADMIN_ECHO_ENDPOINTS, BEARER, ECHO_ENDPOINTS, PRE_ACCEPT_PREFIX, REFUSED
from credentials import IDENTITY, SECOND_TOKEN

ECHO = ECHO_ENDPOINTS["pre_accept"]
ADMIN_ECHO = ADMIN_ECHO_ENDPOINTS["pre_accept"]


def refused(
    client: TestClient,
    url: str,
    headers: dict[str, str] | None = None,
    subprotocols: list[str] | None = None,
) -> WebSocketDenialResponse:
    with (
        pytest.raises(WebSocketDenialResponse) as info,
        client.websocket_connect(url, headers=dict(headers or {}), subprotocols=subprotocols),
    ):
        pass
    return info.value


@pytest.mark.parametrize(("headers", "query", "subprotocols", "expected"), REFUSED)
def test_refusal_is_an_http_response(
    client: TestClient,
    headers: dict[str, str],
    query: str,
    subprotocols: list[str],
    expected: Rejection,
) -> None:
    response = refused(client, ECHO + query, headers, subprotocols)
    assert response.status_code == expected.status
    assert response.headers["content-type"] == "application/json"
    assert response.json() == {"detail": expected.message, "code": expected.code}
    for name, value in expected.headers:
        assert response.headers[name] == value


def test_missing_token_asks_for_bearer_auth(client: TestClient) -> None:
    response = refused(client, ECHO)
    assert response.status_code == 401
    assert response.headers["www-authenticate"] == 'Bearer realm="websocket"'


def test_a_route_needing_a_scope_refuses_a_credential_without_it(client: TestClient) -> None:
    response = refused(client, ADMIN_ECHO, {"authorization": f"Bearer {SECOND_TOKEN}"})
    assert response.status_code == 403
    assert response.json()["code"] == INSUFFICIENT_SCOPE.code
    with client.websocket_connect(ADMIN_ECHO, headers=dict(BEARER)) as websocket:
        websocket.send_text("admin")
        assert websocket.receive_text() == "admin"


def test_unknown_websocket_path_is_404_not_a_bare_403(client: TestClient) -> None:
    response = refused(client, f"{PRE_ACCEPT_PREFIX}/no-such-endpoint", BEARER)
    assert response.status_code == 404
    assert response.json()["code"] == "not_found"


def test_http_routes_are_not_guarded(client: TestClient) -> None:
    response = client.get("/health")
    assert response.status_code == 200
    assert response.json() == {"status": "ok"}


def test_endpoint_reads_who_connected(settings: Settings) -> None:
    app = create_app(settings)

    @app.websocket_route(f"{PRE_ACCEPT_PREFIX}/whoami")
    async def whoami(websocket: WebSocket) -> None:
        await websocket.accept()
        await websocket.send_json(
            {
                "identity": websocket.user.identity,
                "authenticated": websocket.user.is_authenticated,
                "scopes": websocket.auth.scopes,
            }
        )
        await websocket.close()

    with (
        TestClient(app) as client,
        client.websocket_connect(f"{PRE_ACCEPT_PREFIX}/whoami", headers=dict(BEARER)) as websocket,
    ):
        assert websocket.receive_json() == {
            "identity": IDENTITY,
            "authenticated": True,
            "scopes": ["admin"],
        }


def test_opaque_mode_answers_like_any_missing_path(settings: Settings) -> None:
    opaque = settings.model_copy(update={"opaque_refusals": True})
    with TestClient(create_app(opaque)) as client:
        guarded = refused(client, ECHO)
        missing = refused(client, f"{PRE_ACCEPT_PREFIX}/no-such-endpoint")
        scoped = refused(client, ADMIN_ECHO, {"authorization": f"Bearer {SECOND_TOKEN}"})
        http_404 = client.get("/no-such-page")
    for response in (guarded, missing, scoped):
        assert response.status_code == 404
        assert response.json() == {"detail": "Not Found"} == http_404.json()
        assert "www-authenticate" not in response.headers


def test_without_the_denial_extension_it_closes_before_accept(app: FastAPI) -> None:
    # A server without "websocket.http.response" (e.g. daphne) cannot send an HTTP
    # response: the guard closes instead, which such servers turn into a bare 403.
    async def without_denial_extension(scope: Scope, receive: Receive, send: Send) -> None:
        extensions = dict(scope.get("extensions") or {})
        extensions.pop("websocket.http.response", None)
        await app({**scope, "extensions": extensions}, receive, send)

    with TestClient(without_denial_extension) as client:
        with pytest.raises(WebSocketDisconnect) as info, client.websocket_connect(ECHO):
            pass
        assert not isinstance(info.value, WebSocketDenialResponse)
        assert info.value.code == 1008  # policy violation; the client sees a bare 403
        with client.websocket_connect(ECHO, headers=dict(BEARER)) as websocket:
            websocket.send_text("still works")
            assert websocket.receive_text() == "still works"


def test_denials_for_per_request_rejections_are_not_cached_without_bound() -> None:
    for seconds in range(CACHED_DENIALS + 20):
        rejection = Rejection(429, "rate_limited", f"Retry in {seconds} s.")
        start, body = denial_messages(rejection)
        assert start["status"] == 429
        assert str(seconds).encode() in body["body"]
    assert len(pre_accept._denials) <= CACHED_DENIALS
