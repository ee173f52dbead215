"""Accept-then-close: accept the WebSocket, then tell the client why it is refused.

Browsers never see the HTTP status of a refused handshake (JavaScript gets only
``error`` and close code 1006). Accepting first lets any client read the reason:
a JSON message ``{"error": code, "detail": message}``, then a close frame with
code 4000 + HTTP status (4401, 4403, ...) and the code as reason.

Use it around an endpoint's body::

    async with accept_then_close(websocket):
        policy.enforce(websocket)  # raises Rejected
        ...
"""

import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager, suppress

from starlette.websockets import WebSocket, WebSocketDisconnect, WebSocketState

from .policy import Rejected, Rejection, log_rejection

logger = logging.getLogger(__name__)

MAX_REASON_BYTES = 123  # RFC 6455: a close frame's reason fits in 123 bytes of UTF-8
INTERNAL_ERROR = 1011


@asynccontextmanager
async def accept_then_close(websocket: WebSocket) -> AsyncIterator[WebSocket]:
    """Accept; turn ``Rejected`` into a readable refusal and crashes into close 1011."""
    await websocket.accept()
    try:
        yield websocket
    except Rejected as exc:
        log_rejection(websocket, exc.rejection)
        await refuse(websocket, exc.rejection)
    except WebSocketDisconnect:
        pass  # the client left; there is nobody to tell
    except Exception:
        # The traceback stays in the server log; the client learns only "internal error".
        logger.exception("WebSocket endpoint %s failed", websocket.scope["path"])
        await close(websocket, INTERNAL_ERROR)
    else:
        await close(websocket, 1000)


async def refuse(websocket: WebSocket, rejection: Rejection) -> None:
    """Send the JSON error, then close with 4000 + status and the code as reason."""
    try:
        await websocket.send_json({"error": rejection.code, "detail": rejection.message})
    except WebSocketDisconnect:
        return
    await close(websocket, rejection.close_code, rejection.code)


async def close(websocket: WebSocket, code: int, reason: str = "") -> None:
    """Close unless either side already has; a vanished client is not an error."""
    if WebSocketState.DISCONNECTED in (websocket.client_state, websocket.application_state):
        return
    with suppress(WebSocketDisconnect):
        await websocket.close(code, trim_reason(reason))


def trim_reason(reason: str) -> str:
    """Cut to 123 bytes of UTF-8 without splitting a character."""
    return reason.encode()[:MAX_REASON_BYTES].decode("utf-8", "ignore")
