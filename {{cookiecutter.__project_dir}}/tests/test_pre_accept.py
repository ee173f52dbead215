"""Pre-accept denial through Starlette's TestClient: status, JSON body, headers."""

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient
from starlette.testclient import WebSocketDenialResponse
from starlette.types import Receive, Scope, Send
from starlette.websockets import WebSocketDisconnect
from {{ cookiecutter.package_name }}.policy import MISSING_TOKEN, Rejection

from {{ cookiecutter.package_name }}.paths import PRE_ACCEPT_PREFIX
from {{ cookiecutter.package_name }}.pre_accept import CACHED_DENIALS, PreAcceptGuard

from cases import BEARER, REFUSED

ECHO = f"{PRE_ACCEPT_PREFIX}/echo"


def refused(
    client: TestClient, url: str, headers: dict[str, str] | None = None
) -> WebSocketDenialResponse:
    with (
        pytest.raises(WebSocketDenialResponse) as info,
        client.websocket_connect(url, headers=dict(headers or {})),
    ):
        pass
    return info.value


@pytest.mark.parametrize(("headers", "query", "expected"), REFUSED)
def test_refusal_is_an_http_response(
    client: TestClient, headers: dict[str, str], query: str, expected: Rejection
) -> None:
    response = refused(client, ECHO + query, headers)
    assert response.status_code == expected.status
    assert response.headers["content-type"] == "application/json"
    assert response.json() == {"detail": expected.message, "code": expected.code}
    for name, value in expected.headers:
        assert response.headers[name] == value


def test_missing_token_asks_for_bearer_auth(client: TestClient) -> None:
    response = refused(client, ECHO)
    assert response.status_code == 401
    assert response.headers["www-authenticate"] == 'Bearer realm="websocket"'


def test_http_routes_are_not_guarded(client: TestClient) -> None:
    response = client.get("/health")
    assert response.status_code == 200
    assert response.json() == {"status": "ok"}


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
        assert info.value.code == MISSING_TOKEN.close_code
        with client.websocket_connect(ECHO, headers=dict(BEARER)) as websocket:
            websocket.send_text("still works")
            assert websocket.receive_text() == "still works"


def test_denials_for_per_request_rejections_are_not_cached_without_bound() -> None:
    class CountingPolicy:
        count = 0

        def admit(self, connection: object) -> Rejection:
            self.count += 1
            return Rejection(429, "rate_limited", f"Retry in {self.count} s.")

    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        raise AssertionError("a refused handshake must not reach the app")

    guard = PreAcceptGuard(app, policy=CountingPolicy())  # type: ignore[arg-type]
    client = TestClient(guard)  # no `with`: no lifespan, only the handshakes
    for _ in range(CACHED_DENIALS + 20):
        assert refused(client, "/ws/anything").status_code == 429
    assert len(guard._denials) == CACHED_DENIALS
