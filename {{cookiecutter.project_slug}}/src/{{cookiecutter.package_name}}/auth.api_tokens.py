"""API tokens: static secrets from the environment, each naming an identity.

``WS_AUTH_TOKENS`` is a comma-separated list of entries::

    alice:<token>:admin     # identity "alice", scope "admin" (scopes space-separated)
    ci:<token>              # identity "ci", no scopes
    <token>                 # identity "token:<first 8 hex of its SHA-256>"

Tokens are compared in constant time: both sides are hashed with SHA-256 (so
neither content nor length leaks through timing) and compared with
``hmac.compare_digest`` against every configured token, with no early exit.
"""

import argparse
import hashlib
import hmac
import re
import secrets
from dataclasses import dataclass
from typing import Annotated

from pydantic import Field, SecretStr, field_validator
from pydantic_settings import BaseSettings, NoDecode
from starlette.authentication import AuthCredentials

from .identity import Identity, User
from .rejections import INVALID_TOKEN, Rejection

# Tokens travel in a header, a subprotocol or a query string: visible ASCII
# without the separators of this list, and long enough that guessing is hopeless.
TOKEN = re.compile(r"[\x21-\x2b\x2d-\x39\x3b-\x7e]{16,}")  # no ',' or ':'
NAME = re.compile(r"[A-Za-z0-9._@-]{1,64}")
SCOPE = re.compile(r"[\x21-\x7e]{1,64}")
NO_TOKENS = (
    "no token configured. Start from the example (cp .env.example .env) and add one to "
    "WS_AUTH_TOKENS there; this prints one: "
    "python -m {{ cookiecutter.package_name }} token --name dev"
)


@dataclass(frozen=True)
class ApiToken:
    name: str
    secret: str
    scopes: tuple[str, ...]


def parse_entry(entry: str) -> ApiToken:
    """``name:token[:scope scope]`` or a bare ``token``; ValueError says what is wrong."""
    parts = entry.split(":")
    if len(parts) > 3:
        raise ValueError("an entry is name:token[:scopes]; tokens cannot contain ':'")
    secret = parts[0] if len(parts) == 1 else parts[1]
    if not TOKEN.fullmatch(secret):
        raise ValueError("every token must be 16+ visible ASCII characters, without ',' or ':'")
    if len(parts) == 1:
        fingerprint = hashlib.sha256(secret.encode()).hexdigest()[:8]
        return ApiToken(f"token:{fingerprint}", secret, ())
    name, scopes = parts[0], tuple(parts[2].split()) if len(parts) == 3 else ()
    if not NAME.fullmatch(name):
        raise ValueError(f"{name!r} is not a token name: letters, digits, '.', '_', '@', '-'")
    if not all(SCOPE.fullmatch(scope) for scope in scopes):
        raise ValueError(f"the scopes of {name!r} must be space-separated visible ASCII words")
    return ApiToken(name, secret, scopes)


class AuthSettings(BaseSettings):
    # No token by default on purpose: a shared default secret is no secret.
    auth_tokens: Annotated[list[SecretStr], NoDecode] = Field(default=[], validate_default=True)

    @field_validator("auth_tokens", mode="before")
    @classmethod
    def _split_entries(cls, value: object) -> object:
        if isinstance(value, str):
            return [item.strip() for item in value.split(",") if item.strip()]
        return value

    @field_validator("auth_tokens")
    @classmethod
    def _entries_parse(cls, entries: list[SecretStr]) -> list[SecretStr]:
        if not entries:
            raise ValueError(NO_TOKENS)
        tokens = [parse_entry(entry.get_secret_value()) for entry in entries]
        names = [token.name for token in tokens]
        if len(set(names)) != len(names):
            raise ValueError("every token needs its own name")
        if len({token.secret for token in tokens}) != len(tokens):
            raise ValueError("the same token is listed twice")
        return entries


class CredentialVerifier:
    """Turns a presented token into the identity it names, or refuses it."""

    def __init__(self, settings: AuthSettings) -> None:
        tokens = [parse_entry(entry.get_secret_value()) for entry in settings.auth_tokens]
        # Identities are built once: admitting a known token allocates nothing.
        self._known = tuple(
            (
                _digest(token.secret.encode()),
                Identity(User(token.name), AuthCredentials(list(token.scopes))),
            )
            for token in tokens
        )

    async def start(self) -> None:
        """Nothing to load: the tokens come from the settings."""

    async def close(self) -> None:
        """Nothing runs in the background."""

    def readiness(self) -> str | None:
        """The part that is not ready (GET /ready), or None: tokens are always there."""
        return None

    async def verify(self, credential: bytes) -> Identity | Rejection:
        candidate = _digest(credential)
        found: Identity | Rejection = INVALID_TOKEN
        for digest, identity in self._known:  # no early exit: same work for every token
            if hmac.compare_digest(candidate, digest):
                found = identity
        return found


def _digest(token: bytes) -> bytes:
    return hashlib.sha256(token).digest()


def add_token_command(commands: "argparse._SubParsersAction[argparse.ArgumentParser]") -> None:
    command = commands.add_parser(
        "token", help="print a new WS_AUTH_TOKENS entry (name:token[:scopes]) with a random token"
    )
    command.add_argument("--name", required=True, help="the identity the token stands for")
    command.add_argument("--scope", action="append", default=[], help="a scope it grants (repeat)")
    command.set_defaults(run=print_new_token)


def print_new_token(args: argparse.Namespace) -> None:
    scopes = [" ".join(args.scope)] if args.scope else []
    entry = ":".join([args.name, secrets.token_urlsafe(32), *scopes])
    try:
        parse_entry(entry)  # refuse a name or scope the settings would refuse
    except ValueError as exc:
        raise SystemExit(f"token: {exc}") from None
    print(entry)
