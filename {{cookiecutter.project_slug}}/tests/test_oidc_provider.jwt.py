"""Against a real OpenID Connect provider: ``oidc-provider-mock`` (Authlib inside).

The test starts the provider on 127.0.0.1 (a socket it binds to port 0 and keeps,
so a restart serves on the same issuer URL), logs a user in through its real
authorization-code flow, and starts the app with the issuer alone: discovery
finds the keys. Every route admits the token on every channel (header,
subprotocol, ticket) as the configured identity claim; the provider then
restarts with a new key, and its new tokens are admitted within the refetch
interval while the old ones are refused.

This provider signs only ID tokens (its access tokens are opaque), so the ID
token is what the client sends here, with the client id as the audience; with
a provider that issues JWT access tokens, send those (docs/authentication.md).

Skipped, saying so, when ``oidc-provider-mock`` is not installed (it needs
Python 3.10+); failed instead where REQUIRE_OIDC is set (CI).
"""

import asyncio
import base64
import http.client
import json
import os
import socket
import threading
import time
import urllib.parse
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from websockets.asyncio.client import connect
from websockets.exceptions import ConnectionClosed, InvalidStatus

from {{ cookiecutter.package_name }}.rejections import (
    INVALID_TOKEN,
)

from cases import ADMIN_ECHO_PATHS, ECHO_PATHS, subprotocols_for
from live_server import LiveServer

CLIENT_ID = "websocket-app"
REDIRECT_URI = "http://127.0.0.1/callback"  # never visited: the code is read from the redirect
REFETCH_SECONDS = 1.0  # WS_JWKS_REFETCH_SECONDS here
SLACK = 2.0  # a busy machine's delay on top of the contract's bound
ADMITTED = (101, "echo")
# The provider's own use of Authlib APIs that newer Authlib deprecates (older Pythons).
pytestmark = pytest.mark.filterwarnings("ignore::DeprecationWarning")


def import_provider() -> Any:
    try:
        import oidc_provider_mock
        import werkzeug.serving
    except ImportError as missing:
        message = f"oidc-provider-mock is not installed ({missing}); pip install oidc-provider-mock"
        if os.environ.get("REQUIRE_OIDC"):
            pytest.fail(message)
        pytest.skip(message)
    return oidc_provider_mock, werkzeug.serving


class OpenIDProvider:
    """oidc-provider-mock served by werkzeug on a socket this object binds and keeps."""

    def __init__(self) -> None:
        self._mock, self._serving = import_provider()
        self._socket = socket.create_server(("127.0.0.1", 0))  # port 0: the kernel picks
        self.port = self._socket.getsockname()[1]
        self.issuer = f"http://127.0.0.1:{self.port}"
        self._server: Any = None

    def start(self) -> None:
        """Serve a new provider: new storage, so a new signing key."""
        user = self._mock.User(
            sub="alice", claims={"email": "alice@example.org", "roles": ["admin"]}
        )
        app = self._mock.app(user_claims=[user])

        class Quiet(self._serving.WSGIRequestHandler):  # type: ignore[name-defined, misc]
            def log_request(self, *args: Any) -> None:
                pass

        self._server = self._serving.make_server(
            "127.0.0.1", self.port, app, threaded=True, request_handler=Quiet,
            fd=self._socket.fileno(),  # werkzeug serves a duplicate: ours stays open
        )  # fmt: skip
        threading.Thread(target=self._server.serve_forever, args=(0.05,), daemon=True).start()

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None

    def restart(self) -> None:
        """The provider restarts with a new key; connections wait in our socket's backlog."""
        self.stop()
        self.start()

    def close(self) -> None:
        self.stop()
        self._socket.close()

    def log_in(self, subject: str = "alice") -> str:
        """A token from the real authorization-code flow: authorize as ``subject``, then
        exchange the code at the token endpoint."""
        connection = http.client.HTTPConnection("127.0.0.1", self.port, timeout=10)
        query = urllib.parse.urlencode({
            "client_id": CLIENT_ID, "redirect_uri": REDIRECT_URI, "response_type": "code",
            "scope": "openid email", "state": "s",
        })  # fmt: skip
        form = {"content-type": "application/x-www-form-urlencoded"}
        connection.request("GET", f"/oauth2/authorize?{query}")  # the login page
        page = connection.getresponse()
        page.read()
        assert page.status == 200, page.status
        connection.request(
            "POST", f"/oauth2/authorize?{query}", urllib.parse.urlencode({"sub": subject}), form
        )
        redirect = connection.getresponse()
        redirect.read()
        location = urllib.parse.urlsplit(redirect.getheader("location") or "")
        [code] = urllib.parse.parse_qs(location.query)["code"]
        exchange = {
            "grant_type": "authorization_code", "code": code, "redirect_uri": REDIRECT_URI,
            "client_id": CLIENT_ID, "client_secret": "any",
        }  # fmt: skip
        connection.request("POST", "/oauth2/token", urllib.parse.urlencode(exchange), form)
        answer = connection.getresponse()
        tokens = json.loads(answer.read())
        connection.close()
        assert answer.status == 200, tokens
        return str(tokens["id_token"])


@pytest.fixture
def provider(monkeypatch: pytest.MonkeyPatch) -> Iterator[OpenIDProvider]:
    monkeypatch.setenv("AUTHLIB_INSECURE_TRANSPORT", "1")  # Authlib: http on 127.0.0.1
    served = OpenIDProvider()
    served.start()
    yield served
    served.close()


@pytest.fixture
def live(provider: OpenIDProvider, tmp_path: Path) -> Iterator[LiveServer]:
    env = {
        "WS_JWT_SECRET": "",  # the tests' HS256 secret, unset: discovery from the issuer
        "WS_JWT_ISSUER": provider.issuer,
        "WS_JWT_AUDIENCE": CLIENT_ID,
        "WS_JWT_IDENTITY_CLAIM": "email",
        "WS_JWT_SCOPE_CLAIMS": "roles",
        "WS_JWKS_REFETCH_SECONDS": str(REFETCH_SECONDS),
        "NO_PROXY": "127.0.0.1",
    }
    with LiveServer(tmp_path, env=env) as server:
        yield server
    server.assert_no_unexpected_errors()


async def attempt(
    server: LiveServer, path: str, token: str, channel: str = "header"
) -> tuple[int, str]:
    """(101, "echo") when admitted; else (HTTP status, refusal code)."""
    headers, subprotocols, query = {}, None, ""
    if channel == "header":
        headers = {"authorization": f"Bearer {token}"}
    elif channel == "subprotocol":
        subprotocols = subprotocols_for(token)
    else:
        query = f"?ticket={await asyncio.to_thread(ticket, server, token)}"
    try:
        async with connect(
            server.ws_url + path + query,
            additional_headers=headers,
            subprotocols=subprotocols,  # type: ignore[arg-type]
        ) as websocket:
            if channel == "subprotocol":
                assert websocket.subprotocol == "bearer"  # never the credential
            await websocket.send("echo")
            if await websocket.recv() == "echo":
                return ADMITTED
            await websocket.recv()  # after the JSON refusal comes the close
    except InvalidStatus as refused:
        return refused.response.status_code, json.loads(refused.response.body)["code"]
    except ConnectionClosed as closed:
        close = closed.rcvd
        return (close.code - 4000, close.reason) if close else (-1, "no close frame")
    raise AssertionError(f"{path}: neither admitted nor refused")


def ticket(server: LiveServer, token: str) -> str:
    connection = http.client.HTTPConnection(server.host, server.port, timeout=10)
    connection.request("POST", "/ws/tickets", headers={"authorization": f"Bearer {token}"})
    answer = connection.getresponse()
    body = json.loads(answer.read())
    connection.close()
    assert answer.status == 201, body
    return str(body["ticket"])


def forged(token: str) -> str:
    """The provider's token with a signature it never made."""
    head = token.rsplit(".", 1)[0]
    return head + "." + base64.urlsafe_b64encode(os.urandom(256)).rstrip(b"=").decode()


async def test_real_provider_tokens_admitted_by_discovery_on_every_route_and_channel(
    provider: OpenIDProvider, live: LiveServer
) -> None:
    token = await asyncio.to_thread(provider.log_in, "alice")
    for path in ECHO_PATHS + ADMIN_ECHO_PATHS:  # admin: the "roles" claim grants it
        for channel in ("header", "subprotocol", "ticket"):
            assert await attempt(live, path, token, channel) == ADMITTED, (path, channel)
        assert await attempt(live, path, forged(token)) == (INVALID_TOKEN.status, "invalid_token")
    assert "as alice@example.org" in live.log  # the identity is the configured claim


async def test_real_provider_restarted_with_a_new_key_is_followed_within_the_interval(
    provider: OpenIDProvider, live: LiveServer
) -> None:
    old = await asyncio.to_thread(provider.log_in)
    for path in ECHO_PATHS:
        assert await attempt(live, path, old) == ADMITTED  # verified, and remembered
    # The worst case: the app has just fetched the keys (a forged token asked it to),
    # so the new key cannot be fetched before the interval is over.
    assert await attempt(live, ECHO_PATHS[0], forged(old)) == (403, "invalid_token")
    provider.restart()
    restarted = time.monotonic()
    new = await asyncio.to_thread(provider.log_in)
    while (outcome := await attempt(live, ECHO_PATHS[0], new)) != ADMITTED:
        assert outcome == (403, "invalid_token"), outcome
        assert time.monotonic() - restarted < REFETCH_SECONDS + SLACK, "not admitted in time"
        await asyncio.sleep(0.05)
    took = time.monotonic() - restarted
    print(f"new key admitted {took:.2f} s after the restart (WS_JWKS_REFETCH_SECONDS=1)")
    for path in ECHO_PATHS:
        assert await attempt(live, path, new) == ADMITTED
        # Its key rotated out, the remembered old token is checked again, and refused.
        assert await attempt(live, path, old) == (403, "invalid_token")
