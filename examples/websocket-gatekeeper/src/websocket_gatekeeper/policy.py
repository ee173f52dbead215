"""The admission policy: the one place that decides whether a WebSocket client is refused.

It looks only at the handshake (headers, query string, path, client address), so
either delivery strategy can ask it: the pre-accept middleware before the
handshake is answered, or an endpoint right after ``accept()``. The strategies
decide only *how* a refusal reaches the client.

Replace or extend ``AdmissionPolicy.admit`` with your own rules. Keep it fast and
free of I/O: it runs for every handshake, including hostile ones.
"""

import hashlib
import hmac
import logging
from collections.abc import Iterable
from dataclasses import dataclass

from starlette.requests import HTTPConnection

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class Rejection:
    """Why a client is refused, in terms both strategies can deliver."""

    status: int  # HTTP status of a pre-accept denial (401, 403, 429, ...)
    code: str  # short machine-readable reason, stable for clients to match on
    message: str  # human-readable detail, safe to show to anyone
    headers: tuple[tuple[str, str], ...] = ()  # extra HTTP headers, e.g. WWW-Authenticate

    @property
    def close_code(self) -> int:
        # 4000-4999 belong to applications; 4000 + status keeps the HTTP meaning
        # readable after accept (4401, 4403, ...), as graphql-ws does.
        return 4000 + self.status


MISSING_TOKEN = Rejection(
    401,
    "missing_token",
    "Send a token as 'Authorization: Bearer <token>' or '?token=<token>'.",
    (("www-authenticate", 'Bearer realm="websocket"'),),
)
INVALID_TOKEN = Rejection(403, "invalid_token", "The token is not valid.")
ORIGIN_NOT_ALLOWED = Rejection(403, "origin_not_allowed", "This origin may not connect.")
HEADERS_TOO_LARGE = Rejection(431, "headers_too_large", "The handshake headers are too large.")

# No legitimate handshake comes near this; uvicorn's httptools parser accepts any
# size, so the policy sets the limit itself (browsers send about 1-2 KB).
MAX_HEADER_BYTES = 16 * 1024


class Rejected(Exception):
    """Raised inside an accepted endpoint to refuse the client (see ``accept_then_close``)."""

    def __init__(self, rejection: Rejection) -> None:
        super().__init__(rejection.code)
        self.rejection = rejection


class AdmissionPolicy:
    """Handshake size, Origin allow-list, then bearer tokens checked in constant time."""

    def __init__(self, tokens: Iterable[str], allowed_origins: Iterable[str] = ()) -> None:
        # Compare fixed-size digests so neither the content nor the length of a
        # configured token leaks through timing.
        self._token_digests = tuple(_digest(token.encode()) for token in tokens)
        if not self._token_digests:
            raise ValueError("AdmissionPolicy needs at least one token")
        # Raw header values are bytes; compare them as such.
        self._allowed_origins = frozenset(origin.encode("latin-1") for origin in allowed_origins)

    def admit(self, connection: HTTPConnection) -> Rejection | None:
        """Return why ``connection`` must be refused, or None to let it in."""
        # One pass over the raw ASGI headers (servers lower-case the names): this
        # runs for every handshake, hostile ones included, so it stays cheap.
        size = 0
        foreign_origin = False
        authorization = None
        for name, value in connection.scope["headers"]:
            size += len(name) + len(value)
            if name == b"origin":
                # Browsers always send Origin on a WebSocket handshake; checking it
                # stops cross-site WebSocket hijacking. Any foreign one refuses.
                foreign_origin |= value not in self._allowed_origins
            elif name == b"authorization":
                authorization = value
        if size > MAX_HEADER_BYTES:
            return HEADERS_TOO_LARGE
        if foreign_origin:
            return ORIGIN_NOT_ALLOWED
        token = (
            bearer_token(authorization) if authorization is not None else query_token(connection)
        )
        if token is None:
            return MISSING_TOKEN
        if not self._is_known(token):
            return INVALID_TOKEN
        return None

    def enforce(self, connection: HTTPConnection) -> None:
        """Raise ``Rejected`` if ``admit`` refuses the connection."""
        rejection = self.admit(connection)
        if rejection is not None:
            raise Rejected(rejection)

    def _is_known(self, token: bytes) -> bool:
        candidate = _digest(token)
        matched = False
        for known in self._token_digests:  # no early exit: same work for every token
            matched |= hmac.compare_digest(candidate, known)
        return matched


# FastAPI's HTTPBearer/APIKeyHeader expect a Request and fail on WebSocket routes,
# so the credentials are read from the handshake directly.


def bearer_token(authorization: bytes) -> bytes | None:
    """The token of an ``Authorization: Bearer <token>`` header value."""
    scheme, _, token = authorization.partition(b" ")
    token = token.strip()
    return token if scheme.lower() == b"bearer" and token else None


def query_token(connection: HTTPConnection) -> bytes | None:
    """``?token=`` for browsers, which cannot set headers on a WebSocket
    (see docs/security.md for why it is the second choice)."""
    if b"token=" not in connection.scope["query_string"]:
        return None  # skip parsing the query string in the common case
    token = connection.query_params.get("token")
    return token.encode("utf-8", "surrogatepass") if token else None


def log_rejection(connection: HTTPConnection, rejection: Rejection) -> None:
    """One INFO line per refusal: reason and client address, never the token."""
    if not logger.isEnabledFor(logging.INFO):
        return
    client = connection.client
    address = f"{client.host}:{client.port}" if client else "unknown"
    # The path only: the query string may carry a token.
    path = connection.scope["path"]
    logger.info("refused WebSocket %s from %s: %s", path, address, rejection.code)


def _digest(token: bytes) -> bytes:
    return hashlib.sha256(token).digest()
