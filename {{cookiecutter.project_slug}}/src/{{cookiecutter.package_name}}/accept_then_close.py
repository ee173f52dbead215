"""Accept-then-close delivery: accept the WebSocket, then tell the client why it is refused.

Browsers never see the HTTP status of a refused handshake (JavaScript gets only
``error`` and close code 1006). Accepting first lets any client read the reason:
a JSON message ``{"error": code, "detail": message}``, then a close frame with
code 4000 + HTTP status (4401, 4403, ...) and the code as reason.
"""

import functools
import json

from starlette.types import Scope, Send

from .credentials import BEARER_SUBPROTOCOL, offers_bearer
from .rejections import OPAQUE, Rejection, close_message


async def deliver_refusal(scope: Scope, send: Send, rejection: Rejection, accepted: bool) -> None:
    """Deliver every refusal of an accept-then-close route."""
    if not accepted:
        # A client that offered "bearer" fails a handshake that does not select it.
        chosen = BEARER_SUBPROTOCOL if offers_bearer(scope.get("subprotocols") or []) else None
        await send({"type": "websocket.accept", "subprotocol": chosen})
    if rejection is not OPAQUE:  # opaque mode: close 4404 with nothing to read
        await send({"type": "websocket.send", "text": error_message(rejection)})
    await send(close_message(rejection))


@functools.lru_cache(maxsize=256)
def error_message(rejection: Rejection) -> str:
    return json.dumps({"error": rejection.code, "detail": rejection.message})
