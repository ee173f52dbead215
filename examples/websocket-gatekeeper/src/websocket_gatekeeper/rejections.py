"""Why a WebSocket client is refused, in terms any delivery can send.

A ``Rejection`` is data: an HTTP status, a short machine code clients can match
on, a message safe to show anyone, and optional headers.
"""

from dataclasses import dataclass
from functools import lru_cache


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
