"""Settings, read once from environment variables (or ``.env``) and validated at start-up."""

from typing import Annotated
from urllib.parse import urlsplit

from limits import parse_many
from pydantic import Field, ValidationError, field_validator
from pydantic_settings import NoDecode, SettingsConfigDict

from .auth import AuthSettings
from .store_redis import parse_redis_url

OFF = "off"
AUTO = "auto"
MAX_REVOCATION_SECONDS = 30 * 24 * 3600


def split_comma_separated(value: object) -> object:
    # Environment variables are flat strings: accept "a,b,c" instead of JSON lists.
    if isinstance(value, str):
        return [item.strip() for item in value.split(",") if item.strip()]
    return value


class Settings(AuthSettings):
    model_config = SettingsConfigDict(env_prefix="WS_", env_file=".env", extra="ignore")

    allowed_origins: Annotated[list[str], NoDecode] = Field(default_factory=list)
    max_message_bytes: int = Field(default=64 * 1024, ge=1, le=16 * 1024 * 1024)
    # Handshakes per client address, in the `limits` notation, or "off". The
    # default lets an office of a few hundred people behind one NAT reconnect
    # after a deploy, and keeps one address to ~20 handshakes a second sustained.
    handshake_rate_limit: str = "50/second;1200/minute"
    max_connections_per_identity: int | None = Field(default=100, ge=1)
    limits_storage_url: str = "memory://"
    # How long a worker that died without cleaning up keeps its slots (Redis store).
    connection_lease_seconds: float = Field(default=30, ge=3, le=3600)
    # Refuse like a path that does not exist, so nothing reveals an endpoint.
    opaque_refusals: bool = False
    # Below the app, under the launcher (server.py): a request head (and an HTTP
    # body) must arrive within this long, and at most this many connections are
    # open per process ("auto": what the file-descriptor limit leaves).
    handshake_timeout_seconds: float = Field(default=10, gt=0, le=300)
    max_open_connections: int | None = Field(default=None, ge=1)
    # Client addresses the in-memory rate state tracks; the least recently seen
    # is forgotten first. Each takes a few hundred bytes.
    max_tracked_addresses: int = Field(default=100_000, ge=100)
    # Governing admitted connections (docs/limits.md). No message from the client
    # for this long closes it ("off": server-push clients may stay silent for
    # hours; the server's own pings already drop peers that vanished).
    idle_timeout_seconds: float | None = Field(default=None, gt=0)
    # Older connections are closed and reconnect: bounds how long one admission
    # stands, and spreads clients over new instances after a deploy.
    max_connection_seconds: float | None = Field(default=24 * 3600, gt=0)
    # Messages per connection, in the `limits` notation, or "off": well above an
    # interactive client (a game at 60 Hz), far below a flood.
    message_rate_limit: str = "100/second;3000/minute"
    # Tickets per identity (POST /ws/tickets), across workers sharing the store:
    # room for a user opening many tabs at once, not for one credential minting
    # tickets from hundreds of addresses.
    ticket_rate_limit: str = "30/second;600/minute"
    # How long POST /ws/revocations revokes an identity when it names no "seconds".
    revocation_seconds: int = Field(default=3600, ge=1, le=MAX_REVOCATION_SECONDS)
{%- if cookiecutter.authentication == "jwt" %}
    # {"type": "auth.refresh", "token": ...} moves a live connection's expiry.
    inband_refresh: bool = True
{%- endif %}

    @field_validator("allowed_origins", mode="before")
    @classmethod
    def _split(cls, value: object) -> object:
        return split_comma_separated(value)

    @field_validator("allowed_origins")
    @classmethod
    def _origins_are_exact(cls, origins: list[str]) -> list[str]:
        return [normalize_origin(origin) for origin in origins]

    @field_validator("handshake_rate_limit", "message_rate_limit", "ticket_rate_limit")
    @classmethod
    def _rate_limit_parses(cls, value: str) -> str:
        value = value.strip()
        if value.lower() == OFF:
            return OFF
        try:
            parse_many(value)
        except ValueError:
            raise ValueError(
                f"{value!r} is not a rate limit; use e.g. 50/second;1200/minute, or off"
            ) from None
        return value

    @field_validator(
        "max_connections_per_identity",
        "idle_timeout_seconds",
        "max_connection_seconds",
        mode="before",
    )
    @classmethod
    def _cap_can_be_off(cls, value: object) -> object:
        return None if isinstance(value, str) and value.strip().lower() == OFF else value

    @field_validator("max_open_connections", mode="before")
    @classmethod
    def _bound_can_be_auto(cls, value: object) -> object:
        return None if isinstance(value, str) and value.strip().lower() == AUTO else value

    @field_validator("limits_storage_url")
    @classmethod
    def _storage_url(cls, value: str) -> str:
        if value != "memory://":
            parse_redis_url(value)  # redis://, redis+sentinel://, redis+cluster://
        return value


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
    """One line per problem: the variable, then what is wrong, without pydantic's prefixes."""
    lines = []
    for error in exc.errors():
        name = "WS_" + str(error["loc"][0]).upper() if error["loc"] else ""
        # Our own words for our own rules, without pydantic's "Value error, " prefix.
        ours = error["type"] == "value_error"
        message = str(error["ctx"]["error"]) if ours else error["msg"]
        lines.append(f"  {name}: {message}" if name else f"  {message}")
    return "\n".join(lines)
