"""JWT verification: claims, pinned algorithms, hostile tokens, settings, the ``token`` command."""

import asyncio
import base64
import hashlib
import hmac
import json
import os
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import jwt
import pytest
from cryptography.hazmat.primitives import serialization
from fastapi.testclient import TestClient
from pydantic import SecretStr
from starlette.testclient import WebSocketDenialResponse
from starlette.websockets import WebSocketDisconnect

from {{ cookiecutter.package_name }}.__main__ import main
from {{ cookiecutter.package_name }}.auth import (
    TOKEN_EXPIRED,
    AuthSettings,
    CredentialVerifier,
    mint_token,
)
from {{ cookiecutter.package_name }}.identity import Identity
from {{ cookiecutter.package_name }}.rejections import (
    INSUFFICIENT_SCOPE,
    INVALID_TOKEN,
    Rejection,
)
from {{ cookiecutter.package_name }}.settings import load_settings

from cases import ADMIN_ECHO_PATHS, ECHO_PATHS
from credentials import SECRET, WRONG_TOKEN
from jwks_server import JWKSServer, rsa_key

PACKAGE = "{{ cookiecutter.package_name }}"
AUDIENCE = "https://api.example.com"
ISSUER = "https://login.example.com/"
JWKS_URL = "https://login.example.com/.well-known/jwks.json"


def b64(data: bytes) -> bytes:
    return base64.urlsafe_b64encode(data).rstrip(b"=")


def forge(header: dict[str, Any], claims: Any, key: bytes = SECRET.encode()) -> bytes:
    """A token built by hand, HMAC-SHA256 signed with ``key``: PyJWT refuses to make these."""
    signing_input = b64(json.dumps(header).encode()) + b"." + b64(json.dumps(claims).encode())
    signature = hmac.new(key, signing_input, hashlib.sha256).digest()
    return signing_input + b"." + b64(signature)


def claims(**changes: Any) -> dict[str, Any]:
    now = int(time.time())
    return {k: v for k, v in {"sub": "alice", "exp": now + 600, **changes}.items() if v is not None}


def signed(**changes: Any) -> bytes:
    return jwt.encode(claims(**changes), SECRET, "HS256").encode()


def verifier(**settings: Any) -> CredentialVerifier:
    return CredentialVerifier(AuthSettings(jwt_secret=SecretStr(SECRET), **settings))


async def test_a_valid_token_is_its_subject_with_its_scopes_until_exp() -> None:
    exp = int(time.time()) + 600
    identity = await verifier().verify(signed(exp=exp, scope="admin read", name="Alice A."))
    assert isinstance(identity, Identity)
    assert identity.user.identity == "alice"
    assert identity.user.display_name == "Alice A."
    assert identity.auth.scopes == ["admin", "read"]
    assert identity.expires_at == exp


@pytest.mark.parametrize(
    ("scope_claims", "scopes"),
    [
        ({"scope": "a b  c"}, ["a", "b", "c"]),
        ({"scp": ["a", "b"]}, ["a", "b"]),
        ({"scp": "a b"}, ["a", "b"]),
        ({"scp": ["a", 7, None]}, ["a"]),
        ({"scope": 42}, []),
        ({}, []),
    ],
)
async def test_scopes_come_from_scope_or_scp(
    scope_claims: dict[str, Any], scopes: list[str]
) -> None:
    identity = await verifier().verify(signed(**scope_claims))
    assert isinstance(identity, Identity)
    assert identity.auth.scopes == scopes


async def test_an_expired_token_asks_the_client_to_refresh() -> None:
    assert await verifier().verify(signed(exp=int(time.time()) - 1)) == TOKEN_EXPIRED
    assert TOKEN_EXPIRED.status == 401


async def test_leeway_admits_a_just_expired_token_and_extends_its_life_alike() -> None:
    exp = int(time.time()) - 5
    identity = await verifier(jwt_leeway_seconds=30).verify(signed(exp=exp))
    assert isinstance(identity, Identity)
    # Closed when the handshake would refuse it too, not at once (a reconnection loop).
    assert identity.expires_at == exp + 30


@pytest.fixture
def decoded(monkeypatch: pytest.MonkeyPatch) -> list[bytes]:
    """The tokens PyJWT decodes, in order: a remembered token is not among them."""
    tokens = []
    decode = jwt.PyJWT.decode_complete

    def counting(self: jwt.PyJWT, token: bytes, *args: Any, **kwargs: Any) -> Any:
        tokens.append(token)
        return decode(self, token, *args, **kwargs)

    monkeypatch.setattr(jwt.PyJWT, "decode_complete", counting)
    return tokens


async def test_a_verified_token_is_remembered_until_it_expires(decoded: list[bytes]) -> None:
    checking = verifier()
    token = signed(exp=int(time.time()) + 2, scope="admin")
    first = await checking.verify(token)
    assert isinstance(first, Identity)
    assert await checking.verify(token) is first
    assert decoded == [token]
    await asyncio.sleep(max(first.expires_at - time.time(), 0) + 0.05)
    assert await checking.verify(token) == TOKEN_EXPIRED  # expired while remembered
    assert await checking.verify(token) == TOKEN_EXPIRED  # forgotten, and PyJWT agrees
    assert decoded == [token, token]


async def test_refused_tokens_are_never_remembered(decoded: list[bytes]) -> None:
    checking = verifier()
    for token in (WRONG_TOKEN.encode(), signed(sub=None), signed(nbf=int(time.time()) + 60)):
        assert await checking.verify(token) == INVALID_TOKEN
        assert await checking.verify(token) == INVALID_TOKEN
    assert len(decoded) == 6


async def test_the_last_tokens_are_remembered_up_to_the_cache_size(decoded: list[bytes]) -> None:
    checking = verifier(jwt_cache_size=2)
    first, second, third = (signed(sub=name) for name in ("a", "b", "c"))
    for token in (first, second, third, third, second):
        assert isinstance(await checking.verify(token), Identity)
    assert decoded == [first, second, third]  # third and second were remembered
    assert isinstance(await checking.verify(first), Identity)
    assert decoded == [first, second, third, first]  # the oldest was dropped for the third


async def test_a_cache_size_of_zero_verifies_every_handshake(decoded: list[bytes]) -> None:
    checking = verifier(jwt_cache_size=0)
    token = signed()
    for _ in range(3):
        assert isinstance(await checking.verify(token), Identity)
    assert decoded == [token] * 3


def rs256_token() -> bytes:
    return rsa_key().token().encode()


def alg_none() -> bytes:
    """The classic: no signature at all, and a header that says that is fine."""
    return b64(b'{"alg":"none"}') + b"." + b64(json.dumps(claims()).encode()) + b"."


def public_pem() -> bytes:
    return (
        rsa_key()
        .private_key.public_key()
        .public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
    )


BAD_TOKENS: list[Any] = [
    pytest.param(lambda: WRONG_TOKEN.encode(), id="bad-signature"),
    pytest.param(lambda: signed()[:-2], id="truncated-signature"),
    pytest.param(lambda: signed(nbf=int(time.time()) + 60), id="nbf-in-the-future"),
    pytest.param(lambda: signed(iat=int(time.time()) + 60), id="iat-in-the-future"),
    pytest.param(lambda: signed(exp=None), id="no-exp"),
    pytest.param(lambda: signed(sub=None), id="no-sub"),
    pytest.param(lambda: forge({"alg": "HS256"}, claims(sub=123)), id="sub-not-a-string"),
    pytest.param(lambda: signed(sub=""), id="empty-sub"),
    pytest.param(lambda: forge({"alg": "HS256"}, claims(exp="soon")), id="exp-not-a-number"),
    pytest.param(lambda: forge({"alg": "HS256"}, claims(exp=10**400)), id="exp-beyond-float"),
    pytest.param(lambda: b"", id="empty"),
    pytest.param(lambda: b"not-a-jwt", id="garbage"),
    pytest.param(lambda: b"a.b.c", id="three-garbage-parts"),
    pytest.param(lambda: b"\xff\xfe.\x80\x81.\xc3", id="not-utf-8"),
    pytest.param(lambda: b64(b"\xff\xfe") + b"." + b64(b"{}") + b".", id="header-not-utf-8"),
    pytest.param(lambda: b64(b"[1]") + b"." + b64(b"{}") + b".", id="header-not-an-object"),
    pytest.param(lambda: forge({"alg": ["HS256"]}, claims()), id="alg-a-list"),
    pytest.param(lambda: forge({"alg": None}, claims()), id="alg-null"),
    pytest.param(lambda: forge({"typ": "JWT"}, claims()), id="no-alg"),
    pytest.param(lambda: forge({"alg": "HS256", "kid": 5}, claims()), id="kid-not-a-string"),
    pytest.param(alg_none, id="alg-none"),
    pytest.param(lambda: forge({"alg": "none"}, claims()), id="alg-none-with-signature"),
    pytest.param(
        lambda: jwt.encode(claims(), SECRET, "HS512").encode(),
        id="hs512-not-pinned",
        marks=pytest.mark.filterwarnings("ignore::jwt.warnings.InsecureKeyLengthWarning"),
    ),
    pytest.param(rs256_token, id="rs256-with-only-a-secret"),
]


@pytest.mark.parametrize("make", BAD_TOKENS)
async def test_every_other_token_is_invalid(make: Callable[[], bytes]) -> None:
    assert await verifier().verify(make()) == INVALID_TOKEN


@pytest.mark.parametrize(
    ("changes", "valid"),
    [
        ({"aud": AUDIENCE, "iss": ISSUER}, True),
        ({"aud": [AUDIENCE, "https://other.example"], "iss": ISSUER}, True),
        ({"aud": "https://other.example", "iss": ISSUER}, False),
        ({"iss": ISSUER}, False),  # no aud at all
        ({"aud": AUDIENCE, "iss": "https://evil.example/"}, False),
        ({"aud": AUDIENCE}, False),  # no iss at all
    ],
)
async def test_audience_and_issuer_are_checked_when_set(
    changes: dict[str, Any], valid: bool
) -> None:
    outcome = await verifier(jwt_audience=AUDIENCE, jwt_issuer=ISSUER).verify(signed(**changes))
    assert isinstance(outcome, Identity) if valid else outcome == INVALID_TOKEN


async def test_audience_and_issuer_are_ignored_when_not_set() -> None:
    token = signed(aud="https://anything.example", iss="https://anyone.example/")
    assert isinstance(await verifier().verify(token), Identity)


@pytest.mark.parametrize(
    ("changes", "valid"),
    [
        ({"aud": "https://v1.example", "iss": "https://sts.example/t/"}, True),
        ({"aud": ["x", "api://v2"], "iss": "https://login.example/t/v2.0"}, True),
        ({"aud": "https://v1.example", "iss": "https://login.example/t/v2.0"}, True),
        ({"aud": "https://other.example", "iss": "https://sts.example/t/"}, False),
        ({"aud": "https://v1.example", "iss": "https://sts.example/other/"}, False),
        ({"aud": "https://v1.example,api://v2", "iss": "https://sts.example/t/"}, False),
    ],
)
async def test_several_audiences_and_issuers_admit_any_one_of_each(
    changes: dict[str, Any], valid: bool
) -> None:
    """Entra ID's v1 and v2 forms: either audience, either issuer, never the list as one string."""
    checking = verifier(
        jwt_audience="https://v1.example, api://v2",
        jwt_issuer="https://sts.example/t/,https://login.example/t/v2.0",
    )
    outcome = await checking.verify(signed(**changes))
    assert isinstance(outcome, Identity) if valid else outcome == INVALID_TOKEN


@pytest.mark.parametrize(
    ("settings", "changes", "identity", "scopes"),
    [
        pytest.param(
            {"jwt_identity_claim": "oid", "jwt_scope_claims": "scp,roles"},
            {"oid": "0f1e-oid", "scp": "read write", "roles": ["admin", "read"]},
            "0f1e-oid",
            ["read", "write", "admin"],
            id="entra-oid-scp-roles",
        ),
        pytest.param(
            {"jwt_scope_claims": "realm_access.roles,resource_access.ws-app.roles"},
            {
                "realm_access": {"roles": ["offline_access", "admin"]},
                "resource_access": {
                    "ws-app": {"roles": ["rooms:write"]},
                    "other": {"roles": ["x"]},
                },
            },
            "alice",
            ["offline_access", "admin", "rooms:write"],
            id="keycloak-nested-roles",
        ),
        pytest.param(
            {"jwt_scope_claims": "permissions"},
            {"permissions": ["read:messages", "admin"], "scope": "openid"},
            "alice",
            ["read:messages", "admin"],
            id="auth0-permissions",
        ),
        pytest.param(
            {"jwt_scope_claims": 'scope,"https://example.com/roles"'},
            {"scope": "read", "https://example.com/roles": ["admin"]},
            "alice",
            ["read", "admin"],
            id="namespaced-claim-with-dots",
        ),
        pytest.param(
            {"jwt_identity_claim": "email", "jwt_scope_claims": "realm_access.roles"},
            {"email": "alice@example.com", "realm_access": "not an object"},
            "alice@example.com",
            [],
            id="google-email-no-scopes",
        ),
        pytest.param(
            {"jwt_scope_claims": "scope,scp"},
            {"scope": "a b", "scp": ["b", "c", 7, ""]},
            "alice",
            ["a", "b", "c"],
            id="union-without-duplicates",
        ),
    ],
)
async def test_identity_and_scopes_come_from_the_configured_claims(
    settings: dict[str, Any], changes: dict[str, Any], identity: str, scopes: list[str]
) -> None:
    outcome = await verifier(**settings).verify(signed(**changes))
    assert isinstance(outcome, Identity)
    assert (outcome.user.identity, outcome.auth.scopes) == (identity, scopes)


@pytest.mark.parametrize(
    "changes",
    [{"oid": None}, {"oid": ""}, {"oid": 42}, {"oid": ["a"]}],
    ids=["missing", "empty", "number", "list"],
)
async def test_a_token_without_the_identity_claim_is_invalid(changes: dict[str, Any]) -> None:
    checking = verifier(jwt_identity_claim="oid")
    assert await checking.verify(signed(**changes)) == INVALID_TOKEN


async def test_a_token_without_sub_is_valid_when_identity_is_another_claim() -> None:
    outcome = await verifier(jwt_identity_claim="oid").verify(signed(sub=None, oid="o-1"))
    assert isinstance(outcome, Identity)
    assert outcome.user.identity == "o-1"


@pytest.mark.parametrize(
    ("azp", "valid"),
    [
        ("ws-app", True),
        ("mobile", True),
        ("other-client", False),
        (None, False),
        (["ws-app"], False),
    ],
)
async def test_azp_must_be_an_authorized_party_when_set(azp: object, valid: bool) -> None:
    """Keycloak: ``aud`` is often ``account``; ``azp`` names the client the token was issued to."""
    checking = verifier(jwt_authorized_parties="ws-app,mobile")
    outcome = await checking.verify(signed(azp=azp))
    assert isinstance(outcome, Identity) if valid else outcome == INVALID_TOKEN
    assert isinstance(await verifier().verify(signed(azp="other-client")), Identity)  # unset


@pytest.mark.parametrize(
    ("typ", "valid"),
    [
        ("at+jwt", True),
        ("AT+JWT", True),
        ("application/at+jwt", True),
        ("JWT", False),  # an ID token, or any other token of the provider
        (None, False),
        (7, False),
    ],
)
async def test_typ_header_must_match_when_set(typ: object, valid: bool) -> None:
    header = {"alg": "HS256"} if typ is None else {"alg": "HS256", "typ": typ}
    outcome = await verifier(jwt_type="Application/AT+JWT").verify(forge(header, claims()))
    assert isinstance(outcome, Identity) if valid else outcome == INVALID_TOKEN
    assert isinstance(await verifier().verify(forge(header, claims())), Identity)  # unset


@pytest.fixture
def provider(monkeypatch: pytest.MonkeyPatch) -> Iterator[JWKSServer]:
    monkeypatch.setenv("NO_PROXY", "127.0.0.1")  # a proxy from the environment must not answer
    with JWKSServer([rsa_key()]) as server:
        yield server


async def test_hs256_signed_with_the_public_key_is_refused(provider: JWKSServer) -> None:
    """Algorithm confusion: a verifier that took "alg" from the token would check
    this HMAC with the public key as the secret, which everyone knows."""
    jwks_verifier = CredentialVerifier(AuthSettings(jwks_url=provider.url))
    await jwks_verifier.start()
    assert isinstance(await jwks_verifier.verify(rs256_token()), Identity)  # the key works
    header = {"alg": "HS256", "kid": rsa_key().kid}
    for public in (public_pem(), json.dumps(rsa_key().jwk).encode()):
        assert await jwks_verifier.verify(forge(header, claims(), key=public)) == INVALID_TOKEN


# -- Settings: one clean line per problem -------------------------------------------------


@pytest.fixture
def clean_env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> pytest.MonkeyPatch:
    """No key source from the test environment, nor from a developer's .env."""
    monkeypatch.chdir(tmp_path)
    for name in os.environ:
        if name.startswith(("WS_JWT", "WS_JWKS")):
            monkeypatch.delenv(name)
    return monkeypatch


@pytest.mark.parametrize(
    ("env", "words"),
    [
        ({}, "WS_JWT_SECRET / WS_JWKS_URL / WS_JWT_ISSUER: no signing keys"),
        ({"WS_JWT_SECRET": SECRET, "WS_JWKS_URL": JWKS_URL}, "set only one of them"),
        ({"WS_JWT_SECRET": "short"}, "WS_JWT_SECRET: must be at least 32 bytes"),
        ({"WS_JWKS_URL": "file:///etc/passwd"}, "WS_JWKS_URL: 'file:///etc/passwd' is not an"),
        (
            {"WS_JWKS_URL": "http://login.example.com/keys"},
            "WS_JWKS_URL: 'http://login.example.com/keys' must be https://",
        ),
        ({"WS_JWT_ISSUER": "https://a.example,https://b.example"}, "need WS_JWKS_URL"),
        (
            {"WS_JWT_ISSUER": "http://login.example.com"},
            "WS_JWT_ISSUER: discovery needs an https:// issuer",
        ),
        (
            {"WS_JWT_SECRET": SECRET, "WS_JWT_SCOPE_CLAIMS": "scope,realm access"},
            "WS_JWT_SCOPE_CLAIMS: 'realm access' is not a claim path",
        ),
        (
            {"WS_JWT_SECRET": SECRET, "WS_JWT_IDENTITY_CLAIM": "a..b"},
            "WS_JWT_IDENTITY_CLAIM: 'a..b' is not a claim path",
        ),
        ({"WS_JWKS_URL": JWKS_URL, "WS_JWKS_TIMEOUT_SECONDS": "0"}, "WS_JWKS_TIMEOUT_SECONDS: "),
        ({"WS_JWT_SECRET": SECRET, "WS_JWT_ALGORITHMS": "none"}, "WS_JWT_ALGORITHMS: none cannot"),
        (
            {"WS_JWT_SECRET": SECRET, "WS_JWT_ALGORITHMS": "RS256"},
            "RS256 cannot be used with WS_JWT_SECRET",
        ),
        (
            {"WS_JWKS_URL": JWKS_URL, "WS_JWT_ALGORITHMS": "RS256,HS256"},
            "HS256 cannot be used with WS_JWKS_URL",
        ),
        ({"WS_JWT_SECRET": SECRET, "WS_JWT_LEEWAY_SECONDS": "-1"}, "WS_JWT_LEEWAY_SECONDS: "),
    ],
)
def test_a_bad_key_configuration_is_one_clean_line(
    clean_env: pytest.MonkeyPatch, env: dict[str, str], words: str
) -> None:
    for name, value in env.items():
        clean_env.setenv(name, value)
    with pytest.raises(SystemExit) as info:
        load_settings()
    message = str(info.value.code)
    [line] = [line for line in message.splitlines() if line.startswith("  ")]
    assert words in line
    assert "Value error" not in message


def test_an_empty_secret_beside_a_jwks_url_is_unset(clean_env: pytest.MonkeyPatch) -> None:
    # What a copied .env.example leaves when WS_JWKS_URL is uncommented.
    clean_env.setenv("WS_JWT_SECRET", "")
    clean_env.setenv("WS_JWKS_URL", JWKS_URL)
    settings = load_settings()
    assert settings.jwt_secret is None
    assert settings.algorithms() == ["RS256", "ES256"]


def test_the_secret_never_shows_in_the_settings_repr() -> None:
    assert SECRET not in repr(AuthSettings(jwt_secret=SecretStr(SECRET)))


# -- The endpoints refuse as the contract says --------------------------------------------


def outcome(client: TestClient, path: str, token: bytes | str) -> tuple[int, str]:
    """(101, "echo") when admitted; else (HTTP status, refusal code), the status read
    back from the close code when the refusal came after accept."""
    credential = token.decode("latin-1") if isinstance(token, bytes) else token
    try:
        with client.websocket_connect(
            path, headers={"authorization": f"Bearer {credential}"}
        ) as ws:
            ws.send_text("echo")
            reply = ws.receive_text()
            if reply == "echo":
                return 101, reply
            ws.receive_text()  # after the JSON refusal, the close
    except WebSocketDenialResponse as denial:
        return denial.status_code, denial.json()["code"]
    except WebSocketDisconnect as close:
        return close.code - 4000, close.reason
    raise AssertionError(f"{path}: neither admitted nor refused")


def refusal(rejection: Rejection) -> tuple[int, str]:
    """What ``outcome`` returns for this rejection, however it was delivered."""
    return rejection.status, rejection.code


@pytest.mark.parametrize("path", ECHO_PATHS + ADMIN_ECHO_PATHS)
def test_endpoints_admit_and_refuse_jwts(client: TestClient, path: str) -> None:
    admin = mint_token(SECRET, "alice", 60, ["admin"])
    assert outcome(client, path, admin) == (101, "echo")
    assert outcome(client, path, signed(exp=int(time.time()) - 1)) == refusal(TOKEN_EXPIRED)
    for token in (WRONG_TOKEN.encode(), alg_none(), rs256_token()):
        assert outcome(client, path, token) == refusal(INVALID_TOKEN)
    if path in ADMIN_ECHO_PATHS:
        bob = mint_token(SECRET, "bob", 60)
        assert outcome(client, path, bob) == refusal(INSUFFICIENT_SCOPE)


# -- python -m <package> token -------------------------------------------------------------


def run_token(cwd: Path, *args: str, **settings: str) -> subprocess.CompletedProcess[str]:
    """``python -m <package> token ...`` with only these key settings, and no .env."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("WS_JWT", "WS_JWKS"))}
    return subprocess.run(
        [sys.executable, "-m", PACKAGE, "token", *args],
        cwd=cwd, env={**env, **settings}, capture_output=True, text=True, timeout=60, check=False,
    )  # fmt: skip


def test_token_command_mints_what_the_app_admits(client: TestClient, tmp_path: Path) -> None:
    args = ("--sub", "carol", "--ttl", "120", "--scope", "admin", "--scope", "read")
    result = run_token(tmp_path, *args, WS_JWT_SECRET=SECRET)
    assert result.returncode == 0, result.stderr
    token = result.stdout.strip()
    payload = jwt.decode(token, SECRET, algorithms=["HS256"])
    assert payload["sub"] == "carol"
    assert payload["scope"] == "admin read"
    assert payload["exp"] - payload["iat"] == 120
    for path in ADMIN_ECHO_PATHS:
        assert outcome(client, path, token) == (101, "echo")


def test_token_command_without_a_secret_stops_with_one_line(tmp_path: Path) -> None:
    result = run_token(tmp_path, "--sub", "carol", WS_JWKS_URL=JWKS_URL)
    assert result.returncode == 1
    assert result.stdout == ""
    assert result.stderr.splitlines() == [
        "token: minting needs WS_JWT_SECRET; with an identity provider, it issues tokens"
    ]


async def test_token_command_adds_the_configured_audience_and_issuer(
    clean_env: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    for name, value in (("SECRET", SECRET), ("AUDIENCE", AUDIENCE), ("ISSUER", ISSUER)):
        clean_env.setenv(f"WS_JWT_{name}", value)
    main(["token", "--sub", "dave"])
    token = capsys.readouterr().out.strip().encode()
    identity = await verifier(jwt_audience=AUDIENCE, jwt_issuer=ISSUER).verify(token)
    assert isinstance(identity, Identity)
    assert identity.user.identity == "dave"


@pytest.mark.parametrize(
    ("args", "env", "words"),
    [
        (
            ["--sub", "x"],
            {"WS_JWKS_URL": JWKS_URL},
            "token: minting needs WS_JWT_SECRET",
        ),
        (["--sub", "x"], {}, "WS_JWT_SECRET / WS_JWKS_URL / WS_JWT_ISSUER: no signing keys"),
        (["--sub", "x", "--ttl", "0"], {"WS_JWT_SECRET": SECRET}, "--ttl must be a positive"),
        (["--sub", "x", "--ttl", "soon"], {"WS_JWT_SECRET": SECRET}, "invalid int value: 'soon'"),
        (["--sub", " "], {"WS_JWT_SECRET": SECRET}, "--sub must name someone"),
    ],
)
def test_token_command_refuses_with_a_clear_line(
    clean_env: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    args: list[str],
    env: dict[str, str],
    words: str,
) -> None:
    for name, value in env.items():
        clean_env.setenv(name, value)
    with pytest.raises(SystemExit) as info:
        main(["token", *args])
    # SystemExit("...") prints its message to stderr; argparse prints, then exits with 2.
    message = str(info.value.code) if isinstance(info.value.code, str) else capsys.readouterr().err
    assert info.value.code != 0
    assert words in message
