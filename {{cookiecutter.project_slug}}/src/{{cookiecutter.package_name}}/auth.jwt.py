"""JWT: tokens from your login flow or identity provider, verified with PyJWT.

Exactly one key source:

- ``WS_JWT_SECRET``: a shared secret, HS256 (your own login flow issues tokens;
  the ``token --sub NAME`` command of ``__main__.py`` mints one for development);
- ``WS_JWKS_URL``: an identity provider's public keys (RS256 / ES256), fetched
  without blocking the event loop and cached (``jwks.py``);
- discovery: neither set and exactly one ``WS_JWT_ISSUER``: the keys named by
  ``<issuer>/.well-known/openid-configuration``.

Algorithms are pinned to that source (never ``none``, never HS256 with a public
key). ``exp`` and the identity claim are required; ``iss``, ``aud``, ``azp`` and
the ``typ`` header are checked when their settings are set. Which claim names
the identity and which claims carry scopes are settings, so Keycloak, Entra ID
or Auth0 tokens map without code (docs/authentication.md).

A token verified once is remembered until its ``exp`` (``VerifiedTokens``), so a
client reconnecting with the same token is not verified again: PyJWT's checks
cost more than the rest of an allowed handshake together (docs/performance.md).
Claims are mapped once, at verification.
"""

import argparse
import asyncio
import re
import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Annotated, Any

import jwt
from pydantic import Field, SecretStr, field_validator, model_validator
from pydantic_settings import BaseSettings, NoDecode
from starlette.authentication import AuthCredentials

from .identity import Identity, User
from .jwks import (
    WAIT_SECONDS,
    JWKSCache,
    KeysUnavailable,
    PublicKey,
    Source,
    discovery_problem,
    url_problem,
)
from .rejections import INVALID_TOKEN, Rejection

HS256 = "HS256"
ASYMMETRIC = ("RS256", "ES256", "RS384", "ES384", "RS512", "ES512", "PS256", "EdDSA")
# 401, not 403: the client should get a new token and reconnect, not give up.
TOKEN_EXPIRED = Rejection(
    401,
    "token_expired",
    "The token has expired; get a new one.",
    (("www-authenticate", 'Bearer realm="websocket", error="invalid_token"'),),
)
AUTH_UNAVAILABLE = Rejection(
    503,
    "auth_unavailable",
    "The signing keys cannot be fetched right now; retry shortly.",
    (("retry-after", "5"),),
)
# A claim path: names joined by dots, a name with dots in "double quotes"
# (Auth0's namespaced claims: "https://example.com/roles").
CLAIM_NAME = r'(?:[^".,\s]+|"[^"]+")'
CLAIM_PATH = re.compile(rf"{CLAIM_NAME}(?:\.{CLAIM_NAME})*")


def split_list(value: object) -> object:
    # Environment variables are flat strings: "a,b,c" instead of JSON lists.
    if isinstance(value, str):
        return [item.strip() for item in value.split(",") if item.strip()]
    return value


def claim_path(path: str) -> tuple[str, ...]:
    """``realm_access.roles`` -> ("realm_access", "roles"), or ValueError."""
    if not CLAIM_PATH.fullmatch(path):
        raise ValueError(
            f"{path!r} is not a claim path: names joined by dots, e.g. realm_access.roles "
            'or resource_access."my.app".roles (no spaces)'
        )
    return tuple(name.strip('"') for name in re.findall(CLAIM_NAME, path))


def token_type(value: str) -> str:
    """``typ`` as RFC 8725 compares it: case-insensitive, ``application/`` optional."""
    value = value.strip().lower()
    return value.removeprefix("application/")


class AuthSettings(BaseSettings):
    jwt_secret: SecretStr | None = None
    jwks_url: str | None = None
    # Comma-separated; a token must name one of each (when set).
    jwt_audience: Annotated[list[str], NoDecode] = []
    jwt_issuer: Annotated[list[str], NoDecode] = []
    jwt_identity_claim: str = "sub"
    jwt_scope_claims: Annotated[list[str], NoDecode] = ["scope", "scp"]
    jwt_authorized_parties: Annotated[list[str], NoDecode] = []  # azp, when set
    jwt_type: str | None = None  # the "typ" header, when set (e.g. at+jwt)
    # Empty: HS256 with a secret, RS256 and ES256 with a JWKS.
    jwt_algorithms: Annotated[list[str], NoDecode] = []
    jwt_leeway_seconds: float = Field(default=0, ge=0, le=300)
    jwks_cache_seconds: float = Field(default=300, ge=1)
    # At most one fetch per this many seconds for a token no cached key verifies,
    # so a flood of forged tokens cannot become a flood of requests to the provider.
    jwks_refetch_seconds: float = Field(default=30, gt=0)
    # A whole download (connect, headers, body) of the JWKS or discovery document.
    jwks_timeout_seconds: float = Field(default=10, gt=0, le=60)
    # Verified tokens remembered per process (0: verify every handshake).
    jwt_cache_size: int = Field(default=10_000, ge=0)

    @field_validator("jwt_secret", "jwks_url", "jwt_type", mode="before")
    @classmethod
    def _empty_is_unset(cls, value: object) -> object:
        # `WS_JWT_SECRET=` as .env.example leaves it, beside a WS_JWKS_URL: not set.
        return None if isinstance(value, str) and not value.strip() else value

    @field_validator(
        "jwt_audience",
        "jwt_issuer",
        "jwt_scope_claims",
        "jwt_authorized_parties",
        "jwt_algorithms",
        mode="before",
    )
    @classmethod
    def _split_jwt_lists(cls, value: object) -> object:  # not _split: Settings has one
        return split_list(value)

    @field_validator("jwt_identity_claim")
    @classmethod
    def _identity_claim_is_a_path(cls, path: str) -> str:
        claim_path(path)
        return path

    @field_validator("jwt_scope_claims")
    @classmethod
    def _scope_claims_are_paths(cls, paths: list[str]) -> list[str]:
        for path in paths:
            claim_path(path)
        return paths

    @field_validator("jwt_type")
    @classmethod
    def _type(cls, value: str | None) -> str | None:
        return None if value is None else token_type(value)

    @field_validator("jwt_secret")
    @classmethod
    def _secret_is_long(cls, secret: SecretStr | None) -> SecretStr | None:
        if secret is not None and len(secret.get_secret_value().encode()) < 32:
            raise ValueError(
                "must be at least 32 bytes (HS256 needs a key as long as its hash); e.g. "
                "python -c 'import secrets; print(secrets.token_urlsafe(48))'"
            )
        return secret

    @field_validator("jwks_url")
    @classmethod
    def _jwks_url_is_https(cls, url: str | None) -> str | None:
        problem = url and url_problem(url)
        if problem:
            raise ValueError(problem)
        return url

    @model_validator(mode="after")
    def _one_key_source(self) -> "AuthSettings":
        if self.jwt_secret is not None and self.jwks_url is not None:
            raise ValueError("WS_JWT_SECRET / WS_JWKS_URL: set only one of them")
        if self.jwt_secret is None and self.jwks_url is None:
            if len(self.jwt_issuer) != 1:
                raise ValueError(
                    "WS_JWT_SECRET / WS_JWKS_URL / WS_JWT_ISSUER: no signing keys. Start from the "
                    "example (cp .env.example .env) and set WS_JWT_SECRET there (python -c "
                    "'import secrets; print(secrets.token_urlsafe(48))' prints one), or set "
                    "WS_JWKS_URL, or one WS_JWT_ISSUER whose keys OpenID discovery finds"
                    + (" (several issuers need WS_JWKS_URL)" if self.jwt_issuer else "")
                )
            problem = url_problem(self.jwt_issuer[0])
            if problem:
                raise ValueError(f"WS_JWT_ISSUER: discovery needs an https:// issuer: {problem}")
        source, allowed = ("WS_JWT_SECRET", (HS256,)) if self.jwt_secret else ("keys", ASYMMETRIC)
        wrong = [name for name in self.jwt_algorithms if name not in allowed]
        if wrong:
            raise ValueError(
                f"WS_JWT_ALGORITHMS: {', '.join(wrong)} cannot be used with "
                f"{source if self.jwt_secret else self.key_source().setting}; "
                f"allowed: {', '.join(allowed)}"
            )
        return self

    def key_source(self) -> Source:
        if self.jwks_url is not None:
            return Source(jwks_url=self.jwks_url)
        return Source(issuer=self.jwt_issuer[0])

    def algorithms(self) -> list[str]:
        if self.jwt_algorithms:
            return list(self.jwt_algorithms)
        return [HS256] if self.jwt_secret is not None else ["RS256", "ES256"]


def invalid_issuer(problem: str) -> SystemExit:
    """A discovery document that arrived but cannot be used: a bad setting (settings.py's words)."""
    return SystemExit(f"Invalid configuration:\n  WS_JWT_ISSUER: {problem}")


def check_discovery(settings: AuthSettings) -> None:
    """Before the server starts (the launcher): stop if the discovery document is unusable.

    Only with discovery. A document that does not arrive within WAIT_SECONDS
    passes: an unreachable provider is not a bad setting, the app starts and
    GET /ready answers 503 naming keys until it is back.
    """
    if settings.jwt_secret is not None or settings.jwks_url is not None:
        return
    timeout = min(WAIT_SECONDS, settings.jwks_timeout_seconds)
    problem = asyncio.run(discovery_problem(settings.jwt_issuer[0], timeout))
    if problem is not None:
        raise invalid_issuer(problem)


@dataclass(frozen=True, slots=True)
class Verified:
    """A token that passed every check, and the key that proved it."""

    identity: Identity
    expires_at: float  # the identity's expires_at: exp, plus the leeway
    key: PublicKey | None  # None with a secret, which never rotates here


class VerifiedTokens:
    """The last ``size`` tokens that were verified, oldest dropped first.

    Only tokens that passed every check get in, so garbage cannot fill it; an
    entry counts until the token expires, and (with a JWKS) only while the key
    that verified it is still published by the provider.
    """

    def __init__(self, size: int) -> None:
        self._size = size
        self._entries: dict[bytes, Verified] = {}

    def get(self, credential: bytes) -> Verified | None:
        return self._entries.get(credential)

    def add(self, credential: bytes, verified: Verified) -> None:
        if self._size == 0:
            return
        if len(self._entries) >= self._size:
            del self._entries[next(iter(self._entries))]  # dicts keep insertion order
        self._entries[credential] = verified

    def discard(self, credential: bytes) -> None:
        self._entries.pop(credential, None)


class ClaimMapping:
    """Which claim names the identity, which carry scopes (dotted paths into the claims)."""

    def __init__(self, identity: str, scopes: Sequence[str]) -> None:
        self.identity = claim_path(identity)
        self.scopes = [claim_path(path) for path in scopes]

    def identity_of(self, claims: dict[str, Any]) -> str | None:
        value = lookup(claims, self.identity)
        return value if isinstance(value, str) and value else None

    def scopes_of(self, claims: dict[str, Any]) -> list[str]:
        """The union, in order: a string is split on spaces, a list taken as is."""
        scopes: dict[str, None] = {}
        for path in self.scopes:
            value = lookup(claims, path)
            items = value.split() if isinstance(value, str) else value
            if isinstance(items, list):
                scopes.update((item, None) for item in items if isinstance(item, str) and item)
        return list(scopes)


def lookup(claims: dict[str, Any], path: tuple[str, ...]) -> Any:
    value: Any = claims
    for name in path:
        if not isinstance(value, dict):
            return None
        value = value.get(name)
    return value


class CredentialVerifier:
    """Turns a presented JWT into the identity it names, or refuses it."""

    def __init__(self, settings: AuthSettings) -> None:
        self._algorithms = frozenset(settings.algorithms())
        self._secret = (
            settings.jwt_secret.get_secret_value().encode() if settings.jwt_secret else None
        )
        self._jwks = (
            None
            if self._secret is not None
            else JWKSCache(
                settings.key_source(),
                self._algorithms,
                cache_seconds=settings.jwks_cache_seconds,
                refetch_seconds=settings.jwks_refetch_seconds,
                timeout_seconds=settings.jwks_timeout_seconds,
            )
        )
        self._jwt = jwt.PyJWT()
        self._audience = settings.jwt_audience or None
        self._issuer = tuple(settings.jwt_issuer) or None
        self._parties = frozenset(settings.jwt_authorized_parties)
        self._type = settings.jwt_type
        self._leeway = settings.jwt_leeway_seconds
        self._options: Any = {"require": ["exp"], "verify_aud": self._audience is not None}
        self._claims = ClaimMapping(settings.jwt_identity_claim, settings.jwt_scope_claims)
        self._verified = VerifiedTokens(settings.jwt_cache_size)

    async def start(self) -> None:
        """Fetch the provider's keys before the first handshake needs them."""
        if self._jwks is None:
            return
        await self._jwks.prefetch()
        if self._jwks.configuration_error:
            # main.StartupExit makes uvicorn log these lines instead of a traceback.
            raise invalid_issuer(self._jwks.configuration_error)

    async def close(self) -> None:
        """Stop the key download under way (the app is shutting down)."""
        if self._jwks is not None:
            await self._jwks.close()

    def readiness(self) -> str | None:
        """None when tokens can be checked; "keys" while no usable key set was ever fetched.

        Meanwhile each probe (GET /ready) asks for the keys again, at most once per
        refetch interval: a balancer that sends no clients until the app is ready
        must not leave it waiting for a handshake to retry the download.
        """
        if self._jwks is None or self._jwks.keys:
            return None
        self._jwks.refresh_if_stale()
        return "keys"

    async def verify(self, credential: bytes) -> Identity | Rejection:
        known = self._verified.get(credential)
        if known is not None:
            recalled = self._recall(credential, known)
            if recalled is not None:
                return recalled
        verified = await self._verify(credential)
        if isinstance(verified, Rejection):
            return verified
        self._verified.add(credential, verified)
        return verified.identity

    def _recall(self, credential: bytes, known: Verified) -> Identity | Rejection | None:
        """What verifying this remembered token again would give (None: check it again)."""
        if known.expires_at <= time.time():  # what decode() would find now
            self._verified.discard(credential)
            return TOKEN_EXPIRED
        if known.key is not None and self._jwks is not None:
            if known.key.retired:  # the provider no longer publishes it
                self._verified.discard(credential)
                return None
            self._jwks.refresh_if_stale()
        return known.identity

    async def _verify(self, credential: bytes) -> Verified | Rejection:
        if self._jwks is None:
            # One secret, HS256 only: decode() itself refuses any other "alg"
            # ("none" included), so the header needs no separate look.
            return self._decode(credential, self._secret, HS256, None)
        try:
            header = jwt.get_unverified_header(credential)
        except jwt.PyJWTError:
            return INVALID_TOKEN
        algorithm = header.get("alg")
        if not isinstance(algorithm, str) or algorithm not in self._algorithms:
            return INVALID_TOKEN  # pinned: "none" and algorithm confusion end here
        kid = header.get("kid")
        if kid is not None and not isinstance(kid, str):
            return INVALID_TOKEN
        self._jwks.refresh_if_stale()
        if not self._jwks.keys:  # none fetched yet: try (once per interval), then 503
            try:
                await self._jwks.refetch()
            except KeysUnavailable:
                return AUTH_UNAVAILABLE
            if not self._jwks.keys:
                return AUTH_UNAVAILABLE
        outcome = self._check(self._jwks.keys, credential, algorithm, kid)
        if outcome is not None:
            return outcome
        # No cached key verifies it: perhaps the provider rotated its keys (with or
        # without a new kid). One refetch per interval, shared by every handshake.
        try:
            changed = await self._jwks.refetch()
        except KeysUnavailable:
            return AUTH_UNAVAILABLE
        if not changed:
            return INVALID_TOKEN
        return self._check(self._jwks.keys, credential, algorithm, kid) or INVALID_TOKEN

    def _check(
        self, published: list[PublicKey], credential: bytes, algorithm: str, kid: str | None
    ) -> Verified | Rejection | None:
        """The token checked with the cached keys; None if no key's signature matches."""
        keys = [key for key in published if key.algorithm == algorithm]
        if kid is not None:  # a key with that kid, else (a provider that omits kids) any
            keys = [key for key in keys if key.kid == kid] or [k for k in keys if k.kid is None]
        for key in keys:
            outcome = self._decode(credential, key.key, algorithm, key)
            if outcome is not None:
                return outcome
        return None

    def _decode(
        self, credential: bytes, key: Any, algorithm: str, public: PublicKey | None
    ) -> Verified | Rejection | None:
        try:
            decoded = self._jwt.decode_complete(
                credential,
                key,
                algorithms=[algorithm],
                audience=self._audience,
                issuer=self._issuer,
                leeway=self._leeway,
                options=self._options,
            )
        except jwt.InvalidSignatureError:
            return None if public is not None else INVALID_TOKEN
        except jwt.ExpiredSignatureError:
            return TOKEN_EXPIRED
        except jwt.PyJWTError:
            return INVALID_TOKEN
        claims: dict[str, Any] = decoded["payload"]
        if self._type is not None:
            typ = decoded["header"].get("typ")
            if not isinstance(typ, str) or token_type(typ) != self._type:
                return INVALID_TOKEN  # e.g. an ID token where access tokens are expected
        if self._parties:
            party = claims.get("azp")
            if not isinstance(party, str) or party not in self._parties:
                return INVALID_TOKEN  # issued to another client of the provider
        identity = self._claims.identity_of(claims)
        if identity is None:
            return INVALID_TOKEN
        try:
            # The connection may live as long as the handshake would still admit
            # the token: closing it at exp while the leeway admits a reconnection
            # would only make the client loop.
            expires_at = float(claims["exp"]) + self._leeway
        except (OverflowError, ValueError, TypeError):  # e.g. an integer too large for a float
            return INVALID_TOKEN
        name = claims.get("name", claims.get("preferred_username"))
        user = User(identity, name if isinstance(name, str) and name else None)
        scopes = AuthCredentials(self._claims.scopes_of(claims))
        return Verified(Identity(user, scopes, expires_at), expires_at, public)


def mint_token(
    secret: str,
    subject: str,
    ttl: int,
    scopes: Sequence[str] = (),
    audience: str | None = None,
    issuer: str | None = None,
    identity_claim: str = "sub",
    scope_claim: str = "scope",
) -> str:
    """An HS256 JWT for development and tests; production tokens come from your login flow."""
    now = int(time.time())
    claims: dict[str, Any] = {"sub": subject, "iat": now, "exp": now + ttl}
    nest(claims, claim_path(identity_claim), subject)
    if scopes:
        path = claim_path(scope_claim)
        nest(claims, path, " ".join(scopes) if path in {("scope",), ("scp",)} else list(scopes))
    if audience is not None:
        claims["aud"] = audience
    if issuer is not None:
        claims["iss"] = issuer
    return jwt.encode(claims, secret, algorithm=HS256)


def nest(claims: dict[str, Any], path: tuple[str, ...], value: object) -> None:
    """Set ``realm_access.roles`` as {"realm_access": {"roles": value}}."""
    for name in path[:-1]:
        claims = claims.setdefault(name, {})
    claims[path[-1]] = value


def add_token_command(commands: "argparse._SubParsersAction[argparse.ArgumentParser]") -> None:
    command = commands.add_parser("token", help="mint a development JWT signed with WS_JWT_SECRET")
    command.add_argument("--sub", required=True, help="the identity (JWT 'sub')")
    command.add_argument("--ttl", type=int, default=3600, help="seconds until it expires")
    command.add_argument("--scope", action="append", default=[], help="a scope it grants (repeat)")
    command.set_defaults(run=print_new_token)


def print_new_token(args: argparse.Namespace) -> None:
    # Imported here: settings.py builds on this module's AuthSettings.
    from .settings import load_settings

    settings = load_settings()
    if settings.jwt_secret is None:
        raise SystemExit(
            "token: minting needs WS_JWT_SECRET; with an identity provider, it issues tokens"
        )
    if args.ttl <= 0:
        raise SystemExit("token: --ttl must be a positive number of seconds")
    if not args.sub.strip():
        raise SystemExit("token: --sub must name someone")
    print(
        mint_token(
            settings.jwt_secret.get_secret_value(),
            args.sub,
            args.ttl,
            args.scope,
            # The first of each list: what this app checks.
            next(iter(settings.jwt_audience), None),
            next(iter(settings.jwt_issuer), None),
            settings.jwt_identity_claim,
            next(iter(settings.jwt_scope_claims), "scope"),
        )
    )
