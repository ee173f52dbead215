"""JWT: tokens from your login flow or identity provider, verified with PyJWT.

Exactly one key source:

- ``WS_JWT_SECRET``: a shared secret, HS256 (your own login flow issues tokens;
  the ``token --sub NAME`` command of ``__main__.py`` mints one for development);
- ``WS_JWKS_URL``: an identity provider's public keys (RS256 / ES256), fetched
  without blocking the event loop and cached (``jwks.py``).

Algorithms are pinned to that source (never ``none``, never HS256 with a public
key). ``exp`` and ``sub`` are required; ``aud`` and ``iss`` are checked when
``WS_JWT_AUDIENCE`` / ``WS_JWT_ISSUER`` are set. Identity is ``sub``; scopes come
from ``scope`` (space-separated) or ``scp`` (a list or a string).

A token verified once is remembered until its ``exp`` (``VerifiedTokens``), so a
client reconnecting with the same token is not verified again: PyJWT's checks
cost more than the rest of an allowed handshake together (docs/benchmarks.md).
"""

import argparse
import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Annotated, Any

import jwt
from pydantic import Field, SecretStr, field_validator, model_validator
from pydantic_settings import BaseSettings, NoDecode
from starlette.authentication import AuthCredentials

from .identity import Identity, User
from .jwks import JWKSCache, KeysUnavailable
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


class AuthSettings(BaseSettings):
    jwt_secret: SecretStr | None = None
    jwks_url: str | None = None
    jwt_audience: str | None = None
    jwt_issuer: str | None = None
    # Empty: HS256 with a secret, RS256 and ES256 with a JWKS.
    jwt_algorithms: Annotated[list[str], NoDecode] = []
    jwt_leeway_seconds: float = Field(default=0, ge=0, le=300)
    jwks_cache_seconds: float = Field(default=300, ge=1)
    # At most one fetch per this many seconds for an unknown key id, so a flood
    # of tokens with random "kid"s cannot become a flood of requests to the provider.
    jwks_refetch_seconds: float = Field(default=30, ge=0)
    # Verified tokens remembered per process (0: verify every handshake).
    jwt_cache_size: int = Field(default=10_000, ge=0)

    @field_validator("jwt_secret", "jwks_url", "jwt_audience", "jwt_issuer", mode="before")
    @classmethod
    def _empty_is_unset(cls, value: object) -> object:
        # `WS_JWT_SECRET=` as .env.example leaves it, beside a WS_JWKS_URL: not set.
        return None if isinstance(value, str) and not value.strip() else value

    @field_validator("jwt_algorithms", mode="before")
    @classmethod
    def _split_algorithms(cls, value: object) -> object:
        if isinstance(value, str):
            return [item.strip() for item in value.split(",") if item.strip()]
        return value

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
    def _jwks_url_is_http(cls, url: str | None) -> str | None:
        if url is not None and not url.startswith(("https://", "http://")):
            raise ValueError(f"{url!r} must be an http(s):// URL")
        return url

    @model_validator(mode="after")
    def _one_key_source(self) -> "AuthSettings":
        if (self.jwt_secret is None) == (self.jwks_url is None):
            raise ValueError(
                "WS_JWT_SECRET / WS_JWKS_URL: set exactly one. Start from the example "
                "(cp .env.example .env) and set WS_JWT_SECRET there: python -c "
                "'import secrets; print(secrets.token_urlsafe(48))' prints one"
            )
        if self.jwt_secret is not None:
            source, allowed = "WS_JWT_SECRET", (HS256,)
        else:
            source, allowed = "WS_JWKS_URL", ASYMMETRIC
        wrong = [name for name in self.jwt_algorithms if name not in allowed]
        if wrong:
            raise ValueError(
                f"WS_JWT_ALGORITHMS: {', '.join(wrong)} cannot be used with {source}; "
                f"allowed: {', '.join(allowed)}"
            )
        return self

    def algorithms(self) -> list[str]:
        if self.jwt_algorithms:
            return list(self.jwt_algorithms)
        return [HS256] if self.jwt_secret is not None else ["RS256", "ES256"]


@dataclass(frozen=True, slots=True)
class Verified:
    """A token that passed every check, and the key that proved it."""

    identity: Identity
    expires_at: float  # the identity's expires_at: exp, plus the leeway
    kid: object  # from the token's header, to look its key up again (JWKS)
    algorithm: str
    key: Any


class VerifiedTokens:
    """The last ``size`` tokens that were verified, oldest dropped first.

    Only tokens that passed every check get in, so garbage cannot fill it; an
    entry counts until the token expires, and (with a JWKS) only while the key
    that verified it is still the provider's current key for its ``kid``.
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


class CredentialVerifier:
    """Turns a presented JWT into the identity it names, or refuses it."""

    def __init__(self, settings: AuthSettings) -> None:
        self._algorithms = frozenset(settings.algorithms())
        self._secret_algorithms = settings.algorithms()  # ["HS256"] with a secret
        self._secret = (
            settings.jwt_secret.get_secret_value().encode() if settings.jwt_secret else None
        )
        self._jwks = (
            JWKSCache(
                settings.jwks_url,
                self._algorithms,
                cache_seconds=settings.jwks_cache_seconds,
                refetch_seconds=settings.jwks_refetch_seconds,
            )
            if settings.jwks_url
            else None
        )
        self._jwt = jwt.PyJWT()
        self._audience = settings.jwt_audience
        self._issuer = settings.jwt_issuer
        self._leeway = settings.jwt_leeway_seconds
        self._options: Any = {"require": ["exp", "sub"], "verify_aud": self._audience is not None}
        self._verified = VerifiedTokens(settings.jwt_cache_size)

    async def start(self) -> None:
        """Fetch the provider's keys before the first handshake needs them."""
        if self._jwks is not None:
            await self._jwks.prefetch()

    async def close(self) -> None:
        """Nothing of the key fetcher outlives the app (helper-owned; replaced on merge)."""

    async def verify(self, credential: bytes) -> Identity | Rejection:
        recalled = await self._recall(credential)
        if recalled is not None:
            return recalled
        verified = await self._verify(credential)
        if isinstance(verified, Rejection):
            return verified
        self._verified.add(credential, verified)
        return verified.identity

    async def _recall(self, credential: bytes) -> Identity | Rejection | None:
        """What verifying this token again would give, if it was verified before."""
        known = self._verified.get(credential)
        if known is None:
            return None
        if known.expires_at <= time.time():  # what decode() would find now
            self._verified.discard(credential)
            return TOKEN_EXPIRED
        if self._jwks is not None:
            try:
                current = await self._jwks.key(known.kid, known.algorithm)
            except KeysUnavailable:
                return AUTH_UNAVAILABLE
            if current is not known.key:  # rotated out, or refreshed: check it again
                self._verified.discard(credential)
                return None
        return known.identity

    async def _verify(self, credential: bytes) -> Verified | Rejection:
        kid: object = None
        if self._jwks is None:
            # One secret, HS256 only: decode() itself refuses any other "alg"
            # ("none" included), so the header needs no separate look.
            key: Any = self._secret
            algorithms = self._secret_algorithms
        else:
            try:
                header = jwt.get_unverified_header(credential)
            except jwt.PyJWTError:
                return INVALID_TOKEN
            algorithm = header.get("alg")
            if not isinstance(algorithm, str) or algorithm not in self._algorithms:
                return INVALID_TOKEN  # pinned: "none" and algorithm confusion end here
            kid = header.get("kid")
            try:
                key = await self._jwks.key(kid, algorithm)
            except KeysUnavailable:
                return AUTH_UNAVAILABLE
            if key is None:
                return INVALID_TOKEN
            algorithms = [algorithm]
        try:
            claims = self._jwt.decode(
                credential,
                key,
                algorithms=algorithms,
                audience=self._audience,
                issuer=self._issuer,
                leeway=self._leeway,
                options=self._options,
            )
        except jwt.ExpiredSignatureError:
            return TOKEN_EXPIRED
        except jwt.PyJWTError:
            return INVALID_TOKEN
        subject = claims["sub"]
        if not isinstance(subject, str) or not subject:
            return INVALID_TOKEN
        try:
            # The connection may live as long as the handshake would still admit
            # the token: closing it at exp while the leeway admits a reconnection
            # would only make the client loop.
            expires_at = float(claims["exp"]) + self._leeway
        except (OverflowError, ValueError):  # an integer too large for a float
            return INVALID_TOKEN
        name = claims.get("name")
        user = User(subject, name if isinstance(name, str) and name else None)
        identity = Identity(user, AuthCredentials(claim_scopes(claims)), expires_at)
        return Verified(identity, expires_at, kid, algorithms[0], key)


def claim_scopes(claims: dict[str, Any]) -> list[str]:
    """OAuth's space-separated ``scope``, or ``scp`` as a list or a string."""
    value = claims.get("scope", claims.get("scp", ""))
    if isinstance(value, str):
        return value.split()
    if isinstance(value, list):
        return [item for item in value if isinstance(item, str)]
    return []


def mint_token(
    secret: str,
    subject: str,
    ttl: int,
    scopes: Sequence[str] = (),
    audience: str | None = None,
    issuer: str | None = None,
) -> str:
    """An HS256 JWT for development and tests; production tokens come from your login flow."""
    now = int(time.time())
    claims: dict[str, Any] = {"sub": subject, "iat": now, "exp": now + ttl}
    if scopes:
        claims["scope"] = " ".join(scopes)
    if audience is not None:
        claims["aud"] = audience
    if issuer is not None:
        claims["iss"] = issuer
    return jwt.encode(claims, secret, algorithm=HS256)


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
            "token: minting needs WS_JWT_SECRET; with WS_JWKS_URL your provider issues tokens"
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
            settings.jwt_audience,
            settings.jwt_issuer,
        )
    )
