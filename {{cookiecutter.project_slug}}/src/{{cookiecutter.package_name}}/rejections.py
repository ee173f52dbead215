"""Why a WebSocket client is refused, in terms any delivery can send.

A ``Rejection`` is data: an HTTP status, a short machine code clients can match
on, a message safe to show anyone, and optional headers. The functions at the end
give it the shapes every refusal takes on the wire: one JSON body for HTTP
(a refused handshake, ticket or revocation request), one close frame after accept.
"""

import json
from dataclasses import dataclass
from functools import lru_cache

from starlette.responses import Response
from starlette.types import Message


@dataclass(frozen=True)
class Rejection:
    status: int  # HTTP status of the refusal (401, 403, 429, ...)
    code: str  # short machine-readable reason, stable for clients to match on
    message: str  # human-readable detail, safe to show to anyone
    headers: tuple[tuple[str, str], ...] = ()  # e.g. WWW-Authenticate, Retry-After


BEARER_CHALLENGE = ("www-authenticate", 'Bearer realm="websocket"')

MISSING_TOKEN = Rejection(
    401,
    "missing_token",
    "Send a token as 'Authorization: Bearer <token>', as the subprotocol "
    "'bearer.<base64url token>', or as '?ticket=' from POST /ws/tickets.",
    (BEARER_CHALLENGE,),
)
INVALID_TOKEN = Rejection(403, "invalid_token", "The token is not valid.")
INVALID_TICKET = Rejection(403, "invalid_ticket", "The ticket is unknown, used or expired.")
INSUFFICIENT_SCOPE = Rejection(
    403, "insufficient_scope", "The token lacks a scope this route needs."
)
ORIGIN_NOT_ALLOWED = Rejection(403, "origin_not_allowed", "This origin may not connect.")
NOT_FOUND = Rejection(404, "not_found", "No WebSocket endpoint at this path.")
HEADERS_TOO_LARGE = Rejection(431, "headers_too_large", "The handshake headers are too large.")
TOO_MANY_CONNECTIONS = Rejection(
    429, "too_many_connections", "Too many open connections for this identity."
)
STORE_UNAVAILABLE = Rejection(
    503,
    "store_unavailable",
    "Tickets cannot be checked right now; retry shortly.",
    (("retry-after", "1"),),
)
REVOKED = Rejection(403, "revoked", "This identity's access has been revoked.")
# After accept only (close 4408 / 4429): the client may reconnect, at once or after a pause.
IDLE_TIMEOUT = Rejection(408, "idle_timeout", "No message arrived for too long.")
LIFETIME_EXCEEDED = Rejection(408, "lifetime_exceeded", "The connection is old enough; reconnect.")
TOO_MANY_MESSAGES = Rejection(
    429, "too_many_messages", "Too many messages on this connection; slow down."
)
INVALID_REQUEST = Rejection(400, "invalid_request", "The request body is not valid.")
REVOCATION_UNAVAILABLE = Rejection(
    503,
    "store_unavailable",
    "The revocation cannot be recorded right now; retry shortly.",
    (("retry-after", "1"),),
)
# Opaque mode (WS_OPAQUE_REFUSALS): every refusal looks like a path that does not
# exist (FastAPI's own 404 body, no code, no reason), so a scanner cannot tell a
# guarded endpoint from nothing at all. Logs and metrics keep the real code.
OPAQUE = Rejection(404, "", "Not Found")


@lru_cache(maxsize=256)  # one object per distinct wait, so pre-built denials are reused
def rate_limited(retry_after: int) -> Rejection:
    return Rejection(
        429,
        "rate_limited",
        "Too many handshakes from this address; retry later.",
        (("retry-after", str(retry_after)),),
    )


@lru_cache(maxsize=256)
def tickets_rate_limited(retry_after: int) -> Rejection:
    return Rejection(
        429,
        "rate_limited",
        "Too many tickets for this identity; retry later.",
        (("retry-after", str(retry_after)),),
    )


def refusal_body(rejection: Rejection) -> bytes:
    """The JSON body of every HTTP refusal: ``{"detail": ..., "code": ...}``."""
    if rejection is OPAQUE:  # exactly FastAPI's own 404: nothing tells them apart
        return json.dumps({"detail": rejection.message}).encode()
    return json.dumps({"detail": rejection.message, "code": rejection.code}).encode()


def http_refusal(rejection: Rejection) -> Response:
    """A refusal from a plain HTTP endpoint, in the same shape as a refused handshake."""
    return Response(
        refusal_body(rejection),
        rejection.status,
        headers=dict(rejection.headers),
        media_type="application/json",
    )


def close_code(rejection: Rejection) -> int:
    # 4000-4999 belong to applications; 4000 + status keeps the HTTP meaning
    # readable after accept (4401, 4403, 4429, ...), as graphql-ws does.
    return 4000 + rejection.status


MAX_REASON_BYTES = 123  # RFC 6455: a close frame's reason fits in 123 bytes of UTF-8


@lru_cache(maxsize=256)
def close_message(rejection: Rejection) -> Message:
    """The close frame that ends an accepted connection for this rejection."""
    reason = rejection.code.encode()[:MAX_REASON_BYTES].decode("utf-8", "ignore")
    return {"type": "websocket.close", "code": close_code(rejection), "reason": reason}
