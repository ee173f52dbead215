"""Where a client's credential travels, and how to read it from a handshake.

| channel | who can use it |
| --- | --- |
| ``Authorization: Bearer <credential>`` | every non-browser client |
| ``Sec-WebSocket-Protocol: bearer, bearer.<base64url(credential)>`` | browsers too |
| ``?ticket=<ticket>`` (one-time, from ``POST /ws/tickets``) | browsers too |
| ``?token=<credential>`` | simple clients; redacted from every log line |

The first channel present wins, in that order. FastAPI's ``HTTPBearer`` and
``APIKeyHeader`` expect a ``Request`` and fail on WebSocket routes, so the raw
handshake is read here instead.
"""

import base64
import binascii
from dataclasses import dataclass
from urllib.parse import unquote_to_bytes

# Browsers cannot set headers on a WebSocket, but they can offer subprotocols:
# the credential rides in "bearer.<base64url>" and the server selects plain
# "bearer", so the credential is never echoed back in the 101 response.
BEARER_SUBPROTOCOL = "bearer"
_CARRIER_PREFIX = "bearer."


@dataclass(slots=True)  # not frozen: a frozen dataclass costs twice as much to create
class Presented:
    """What a handshake carries: a credential or a ticket, and how it came."""

    credential: bytes | None = None
    ticket: str | None = None
    select_bearer: bool = False  # the credential came as a subprotocol: accept "bearer"


NOTHING = Presented()


def presented(authorization: bytes | None, subprotocols: list[str], query: bytes) -> Presented:
    """The credential a handshake presents, by channel priority.

    ``subprotocols`` is the ASGI scope's list, already split by the server.
    """
    if authorization is not None:
        token = bearer_token(authorization)
        if token is not None:
            return Presented(credential=token)
    if subprotocols:
        token = subprotocol_token(subprotocols)
        if token is not None:
            return Presented(credential=token, select_bearer=offers_bearer(subprotocols))
    if b"token=" in query or b"ticket=" in query:  # skip parsing in the common case
        ticket, token = query_credentials(query)
        if ticket:
            return Presented(ticket=ticket.decode("latin-1"))
        if token:
            return Presented(credential=token)
    return NOTHING


def bearer_token(authorization: bytes) -> bytes | None:
    """The credential of an ``Authorization: Bearer <credential>`` header value."""
    scheme, _, token = authorization.partition(b" ")
    token = token.strip()
    return token if scheme.lower() == b"bearer" and token else None


def subprotocol_token(subprotocols: list[str]) -> bytes | None:
    """The credential in ``bearer.<base64url>`` among the offered subprotocols."""
    for offered in subprotocols:
        if offered.startswith(_CARRIER_PREFIX) and len(offered) > len(_CARRIER_PREFIX):
            encoded = offered[len(_CARRIER_PREFIX) :].encode("latin-1", "replace")
            try:
                padded = encoded + b"=" * (-len(encoded) % 4)
                return base64.b64decode(padded, altchars=b"-_", validate=True)
            except (binascii.Error, ValueError):
                return encoded  # not base64url: verification refuses it as invalid
    return None


def offers_bearer(subprotocols: list[str]) -> bool:
    """Whether the client offered plain "bearer", which the accept then selects."""
    return BEARER_SUBPROTOCOL in subprotocols


def query_credentials(query: bytes) -> tuple[bytes | None, bytes | None]:
    """(ticket, token) from a raw query string, percent-decoded."""
    ticket = token = None
    for pair in query.split(b"&"):
        name, _, value = pair.partition(b"=")
        if name == b"ticket":
            ticket = unquote_to_bytes(value)
        elif name == b"token":
            token = unquote_to_bytes(value.replace(b"+", b" "))
    return ticket, token
