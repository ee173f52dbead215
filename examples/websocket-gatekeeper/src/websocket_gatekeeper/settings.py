"""Settings, read once from environment variables (or ``.env``) and validated at start-up."""

import re
from typing import Annotated
from urllib.parse import urlsplit

from pydantic import Field, ValidationError, field_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

# Tokens travel in an HTTP header or a query string: visible ASCII only, and long
# enough that guessing is hopeless.
TOKEN = re.compile(r"[\x21-\x7e]{16,}")
HOW_TO_SET_TOKENS = (
    "set at least one token (16+ visible ASCII characters), e.g. "
    "WS_AUTH_TOKENS=$(python -c 'import secrets; print(secrets.token_urlsafe(32))')"
)


def split_comma_separated(value: object) -> object:
    # Environment variables are flat strings: accept "a,b,c" instead of JSON lists.
    if isinstance(value, str):
        return [item.strip() for item in value.split(",") if item.strip()]
    return value


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="WS_", env_file=".env", extra="ignore")

    # No default on purpose: a shared default secret is no secret.
    auth_tokens: Annotated[list[str], NoDecode] = Field(min_length=1)
    allowed_origins: Annotated[list[str], NoDecode] = []
    max_message_bytes: int = Field(default=64 * 1024, ge=1, le=16 * 1024 * 1024)

    @field_validator("auth_tokens", "allowed_origins", mode="before")
    @classmethod
    def _split(cls, value: object) -> object:
        return split_comma_separated(value)

    @field_validator("auth_tokens")
    @classmethod
    def _tokens_are_strong(cls, tokens: list[str]) -> list[str]:
        if not all(TOKEN.fullmatch(token) for token in tokens):
            raise ValueError("every token must be 16+ visible ASCII characters")
        return tokens

    @field_validator("allowed_origins")
    @classmethod
    def _origins_are_exact(cls, origins: list[str]) -> list[str]:
        return [normalize_origin(origin) for origin in origins]


def normalize_origin(origin: str) -> str:
    """Return ``scheme://host[:port]`` as browsers send it, or raise ValueError."""
    if origin == "null":
        return origin  # sandboxed iframes and file:// pages; allow only if listed
    parts = urlsplit(origin)
    if parts.scheme not in {"http", "https"} or not parts.hostname or "*" in origin:
        raise ValueError(f"{origin!r} is not an exact origin such as https://app.example.com")
    if parts.path not in {"", "/"} or parts.query or parts.fragment or parts.username:
        raise ValueError(f"{origin!r} must be scheme://host[:port] without path or query")
    return f"{parts.scheme}://{parts.netloc.lower()}"


def load_settings() -> Settings:
    """Build Settings, or stop the process with one readable line per problem."""
    try:
        return Settings()
    except ValidationError as exc:
        raise SystemExit(f"Invalid configuration:\n{describe(exc)}") from None


def describe(exc: ValidationError) -> str:
    lines = []
    for error in exc.errors():
        name = "WS_" + str(error["loc"][0]).upper() if error["loc"] else "settings"
        if name == "WS_AUTH_TOKENS" and error["type"] in {"missing", "too_short"}:
            lines.append(f"  {name}: no token configured; {HOW_TO_SET_TOKENS}")
        else:
            lines.append(f"  {name}: {error['msg']}")
    return "\n".join(lines)
