"""Identity providers as they behave: discovery from the issuer, claims shaped like
Keycloak's, Entra ID's and Auth0's, several audiences and issuers, ``azp``, ``typ``.

Keys come from ``jwks_server.py`` over real HTTP; the end-to-end cases run a real
uvicorn and refuse on every route of the project's strategies as the contract's
table says (``invalid_token``, whichever strategy delivers it).
"""

import asyncio
import http.client
import json
import logging
import os
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from websockets.asyncio.client import connect
from websockets.exceptions import ConnectionClosed, InvalidStatus

from {{ cookiecutter.package_name }}.auth import (
    AUTH_UNAVAILABLE,
    AuthSettings,
    CredentialVerifier,
)
from {{ cookiecutter.package_name }}.identity import Identity
from {{ cookiecutter.package_name }}.rejections import (
    INSUFFICIENT_SCOPE,
    INVALID_TOKEN,
    Rejection,
)

from cases import ADMIN_ECHO_PATHS, ECHO_PATHS, SETTINGS_ENV
from jwks_server import JWKSServer, SigningKey, new_key, rsa_key
from live_server import PACKAGE, LiveServer

INTERVAL = 0.25  # WS_JWKS_REFETCH_SECONDS here
ADMITTED = (101, "echo")


@pytest.fixture
def provider(monkeypatch: pytest.MonkeyPatch) -> Iterator[JWKSServer]:
    monkeypatch.setenv("NO_PROXY", "127.0.0.1")  # a proxy from the environment must not answer
    with JWKSServer([rsa_key()]) as server:
        yield server


def discovering(provider: JWKSServer, **settings: Any) -> CredentialVerifier:
    """A verifier configured by its issuer alone: the keys are found by discovery."""
    return CredentialVerifier(
        AuthSettings(jwt_issuer=provider.issuer, jwks_refetch_seconds=INTERVAL, **settings)
    )


async def test_discovery_finds_the_keys_from_the_issuer_alone(provider: JWKSServer) -> None:
    checking = discovering(provider)
    await checking.start()
    assert (provider.discovery_requests, provider.requests) == (1, 1)
    assert checking.readiness() is None
    admitted = await checking.verify(rsa_key().token(iss=provider.issuer).encode())
    assert isinstance(admitted, Identity)
    for iss in ("http://127.0.0.1:1", None):  # another issuer, or none: the issuer is checked
        token = rsa_key().token(iss=iss) if iss else rsa_key().token()
        assert await checking.verify(token.encode()) == INVALID_TOKEN


async def test_discovery_follows_a_rotation_with_one_jwks_fetch(provider: JWKSServer) -> None:
    checking = discovering(provider)
    await checking.start()
    rotated = new_key("ES256")
    provider.publish(rotated)
    await asyncio.sleep(INTERVAL)
    assert isinstance(await checking.verify(rotated.token(iss=provider.issuer).encode()), Identity)
    assert (provider.discovery_requests, provider.requests) == (1, 2)  # the document is cached


@pytest.mark.parametrize(
    ("document", "words"),
    [
        ({"issuer": "{issuer}"}, "has no jwks_uri: set WS_JWKS_URL instead"),
        ({"issuer": "https://other.example", "jwks_uri": "{url}"}, "names the issuer"),
        (
            {"issuer": "{issuer}", "jwks_uri": "http://keys.example.com/jwks"},
            "gives the jwks_uri 'http://keys.example.com/jwks' must be https://",
        ),
        ({"issuer": "{issuer}", "jwks_uri": 42}, "has no jwks_uri"),
    ],
    ids=["no-jwks-uri", "other-issuer", "http-jwks-uri", "jwks-uri-not-a-string"],
)
async def test_an_unusable_discovery_document_stops_start_up_with_one_line(
    provider: JWKSServer, caplog: pytest.LogCaptureFixture, document: dict[str, Any], words: str
) -> None:
    provider.discovery = {
        name: value.format(issuer=provider.issuer, url=provider.url)
        if isinstance(value, str)
        else value
        for name, value in document.items()
    }
    with caplog.at_level(logging.WARNING), pytest.raises(SystemExit) as info:
        await discovering(provider).start()
    assert not caplog.records  # that line only, no WARNING before it
    message = str(info.value.code)
    [line] = [line for line in message.splitlines() if line.startswith("  ")]
    assert line.startswith(f"  WS_JWT_ISSUER: the discovery document of {provider.issuer} ")
    assert words in line
    assert provider.requests == 0


@pytest.mark.parametrize(
    "command",
    [
        ["-m", PACKAGE],
        ["-m", PACKAGE, "--workers", "2"],
        ["-m", "uvicorn", f"{PACKAGE}.main:app"],
    ],
    ids=["launcher", "launcher-workers", "uvicorn"],
)
def test_an_unusable_discovery_document_stops_the_server_with_one_line(
    provider: JWKSServer, tmp_path: Path, command: list[str]
) -> None:
    """A real server process, as the README starts it: the line, no traceback, status > 0."""
    provider.discovery = {"issuer": provider.issuer}  # no jwks_uri
    env = {
        **os.environ,
        **SETTINGS_ENV,
        "WS_JWT_SECRET": "",
        "WS_JWT_ISSUER": provider.issuer,
        "NO_PROXY": "127.0.0.1",
    }
    started = time.monotonic()
    stopped = subprocess.run(
        [sys.executable, *command, "--host", "127.0.0.1", "--port", "0"],
        cwd=tmp_path,  # no developer .env
        env=env,
        capture_output=True,
        text=True,
        timeout=15,
    )
    output = stopped.stdout + stopped.stderr
    assert stopped.returncode != 0, output
    assert time.monotonic() - started < 10, output
    [line] = [line for line in output.splitlines() if "WS_JWT_ISSUER" in line]
    assert line == (
        f"  WS_JWT_ISSUER: the discovery document of {provider.issuer} "
        "has no jwks_uri: set WS_JWKS_URL instead"
    ), output
    assert "Traceback" not in output
    assert provider.requests == 0  # no JWKS: nothing names one


async def test_discovery_down_at_start_up_is_503_and_not_ready_until_it_is_back(
    provider: JWKSServer, caplog: pytest.LogCaptureFixture
) -> None:
    provider.stop()
    checking = discovering(provider)
    with caplog.at_level(logging.WARNING):
        await checking.start()
    [record] = caplog.records
    assert record.levelno == logging.WARNING
    assert "could not fetch the OpenID configuration" in record.getMessage()
    assert checking.readiness() == "keys"
    token = rsa_key().token(iss=provider.issuer).encode()
    assert await checking.verify(token) == AUTH_UNAVAILABLE
    provider.start()
    await asyncio.sleep(INTERVAL)
    assert isinstance(await checking.verify(token), Identity)
    assert checking.readiness() is None


# -- End to end: real uvicorn, keys from the provider, every route ------------------------


async def attempt(server: LiveServer, path: str, token: str) -> tuple[int, str]:
    """(101, "echo") when admitted; else (HTTP status, refusal code), the status read
    back from the close code when the refusal came after accept."""
    headers = {"authorization": f"Bearer {token}"}
    try:
        async with connect(server.ws_url + path, additional_headers=headers) as websocket:
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


def get(server: LiveServer, path: str) -> tuple[int, bytes]:
    """A plain HTTP GET, whatever its status."""
    connection = http.client.HTTPConnection(server.host, server.port, timeout=10)
    try:
        connection.request("GET", path)
        answer = connection.getresponse()
        return answer.status, answer.read()
    finally:
        connection.close()


def refusal(rejection: Rejection) -> tuple[int, str]:
    return rejection.status, rejection.code


def serve(
    provider: JWKSServer, tmp_path: Path, launcher: bool = False, **settings: str
) -> LiveServer:
    env = {
        "WS_JWT_SECRET": "",  # the tests' HS256 secret, unset: keys come from the provider
        "WS_JWKS_REFETCH_SECONDS": str(INTERVAL),
        "NO_PROXY": "127.0.0.1",
        **{f"WS_{name.upper()}": value for name, value in settings.items()},
    }
    return LiveServer(tmp_path, env=env, launcher=launcher)


async def check_every_route(
    live: LiveServer,
    admitted: str,
    without_admin: str,
    refused: dict[str, str],
) -> None:
    for path in ECHO_PATHS + ADMIN_ECHO_PATHS:
        assert await attempt(live, path, admitted) == ADMITTED, path
        for why, token in refused.items():
            assert await attempt(live, path, token) == refusal(INVALID_TOKEN), (path, why)
    for path in ECHO_PATHS:
        assert await attempt(live, path, without_admin) == ADMITTED
    for path in ADMIN_ECHO_PATHS:
        assert await attempt(live, path, without_admin) == refusal(INSUFFICIENT_SCOPE)
    live.assert_no_unexpected_errors()


async def test_keycloak_shaped_tokens(provider: JWKSServer, tmp_path: Path) -> None:
    """Realm roles and client roles as scopes, ``aud`` "account", the client in ``azp``."""
    with serve(
        provider,
        tmp_path,
        jwt_issuer=provider.issuer,  # discovery, as Keycloak's realm URL would be
        jwt_audience="account",
        jwt_authorized_parties="ws-app",
        jwt_scope_claims="realm_access.roles,resource_access.ws-app.roles",
    ) as live:
        key, iss = rsa_key(), provider.issuer

        def keycloak(realm: list[str], client: list[str], **claims: Any) -> str:
            shaped = {
                "iss": iss,
                "aud": "account",
                "azp": "ws-app",
                "typ": "Bearer",
                "preferred_username": "alice",
                "realm_access": {"roles": realm},
                "resource_access": {"ws-app": {"roles": client}, "other": {"roles": ["admin"]}},
            }
            return key.token(**{**shaped, **claims})

        await check_every_route(
            live,
            admitted=keycloak(["offline_access"], ["admin"]),
            without_admin=keycloak(["offline_access"], ["viewer"]),
            refused={
                "another client (azp)": keycloak([], ["admin"], azp="other"),
                "no azp": keycloak([], ["admin"], azp=None),
                "another audience": keycloak([], ["admin"], aud="other-api"),
                "another realm (iss)": keycloak([], ["admin"], iss=iss + "/realms/other"),
            },
        )


async def test_entra_shaped_tokens(provider: JWKSServer, tmp_path: Path) -> None:
    """v1 and v2 issuers and audiences, identity ``oid``, scopes from ``scp`` and ``roles``."""
    v1, v2 = "https://sts.windows.net/tenant/", "https://login.microsoftonline.com/tenant/v2.0"
    with serve(
        provider,
        tmp_path,
        jwks_url=provider.url,  # two issuers: the JWKS URL is set, not discovered
        jwt_issuer=f"{v1},{v2}",
        jwt_audience="api://ws-api,0a1b2c3d-1111-2222-3333-555555555555",
        jwt_identity_claim="oid",
        jwt_scope_claims="scp,roles",
        jwt_type="JWT",
    ) as live:
        key = rsa_key()

        def entra(roles: list[str], typ: str = "JWT", **claims: Any) -> str:
            shaped = {"iss": v2, "aud": "0a1b2c3d-1111-2222-3333-555555555555", "oid": "o-1"}
            headers = {"typ": typ}
            return key.token(
                sub="pairwise-sub", headers=headers, scp="read", roles=roles, **{**shaped, **claims}
            )

        await check_every_route(
            live,
            admitted=entra(["admin"], iss=v1, aud="api://ws-api"),
            without_admin=entra([]),
            refused={
                "another tenant": entra(["admin"], iss="https://sts.windows.net/other/"),
                "another API": entra(["admin"], aud="api://other"),
                "no oid": entra(["admin"], oid=None),
                "typ at+jwt, not JWT": entra(["admin"], typ="at+jwt"),
            },
        )


async def test_auth0_shaped_tokens(provider: JWKSServer, tmp_path: Path) -> None:
    """``permissions`` as scopes, ``typ`` at+jwt: an ID token (typ JWT) is refused."""
    issuer = provider.issuer + "/"  # Auth0's issuer ends with a slash
    provider.discovery = {"issuer": issuer, "jwks_uri": provider.url}
    with serve(
        provider,
        tmp_path,
        jwt_issuer=issuer,
        jwt_audience="https://ws.example.com",
        jwt_scope_claims="permissions",
        jwt_type="at+jwt",
    ) as live:
        key = rsa_key()

        def auth0(permissions: list[str], typ: str = "at+jwt", **claims: Any) -> str:
            shaped = {"iss": issuer, "aud": ["https://ws.example.com", issuer + "userinfo"]}
            headers = {"typ": typ}
            return key.token(headers=headers, permissions=permissions, **{**shaped, **claims})

        await check_every_route(
            live,
            admitted=auth0(["admin", "read:messages"]),
            without_admin=auth0(["read:messages"], scope="admin"),  # scope is not mapped here
            refused={
                "ID token": auth0(["admin"], typ="JWT", aud="client-id"),
                "ID token, right audience": auth0(["admin"], typ="JWT"),
                "foreign key": new_key("RS256").token(
                    headers={"typ": "at+jwt"}, iss=issuer, aud="https://ws.example.com"
                ),
                "kid-less foreign key": SigningKey(
                    "RS256", new_key("RS256").private_key, None
                ).token(headers={"typ": "at+jwt"}, iss=issuer, aud="https://ws.example.com"),
            },
        )
    assert provider.discovery_requests == 1  # refetches for the foreign keys: the JWKS only


@pytest.mark.parametrize("launcher", [False, True], ids=["uvicorn", "launcher"])
async def test_ready_names_the_keys_until_they_are_fetched_without_any_handshake(
    provider: JWKSServer, tmp_path: Path, launcher: bool
) -> None:
    """A balancer sends no clients to an unready instance: its probes must retry the keys.

    An unreachable provider is no bad setting: the server starts (the launcher's
    check of the discovery document lets it pass)."""
    provider.stop()
    with serve(provider, tmp_path, launcher, jwt_issuer=provider.issuer) as live:
        status, body = await asyncio.to_thread(get, live, "/ready")
        assert (status, json.loads(body)["unready"]) == (503, ["keys"])
        assert (await asyncio.to_thread(get, live, "/health"))[0] == 200  # liveness only
        provider.start()
        deadline = asyncio.get_running_loop().time() + INTERVAL + 5
        while (await asyncio.to_thread(get, live, "/ready"))[0] != 200:
            assert asyncio.get_running_loop().time() < deadline, live.log
            await asyncio.sleep(0.05)
        for path in ECHO_PATHS:
            assert await attempt(live, path, rsa_key().token(iss=provider.issuer)) == ADMITTED
    live.assert_no_unexpected_errors()
