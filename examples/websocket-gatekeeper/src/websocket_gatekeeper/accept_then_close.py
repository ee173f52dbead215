"""Accept-then-close: accept the WebSocket, then tell the client why it is refused.

Browsers never see the HTTP status of a refused handshake (JavaScript gets only
``error`` and close code 1006). Accepting first lets any client read the reason:
a JSON message ``{"error": code, "detail": message}``, then a close frame with
code 4000 + HTTP status (4401, 4403, ...) and the code as reason.

Decorate a Starlette-style WebSocket endpoint::

    @router.websocket_route("/echo")
    @accept_then_close(scopes=["admin"])  # scopes are optional
    async def echo(websocket: WebSocket) -> None: ...

The endpoint runs only for admitted clients, with ``websocket.user`` and
``websocket.auth`` set. Raise ``Rejected`` anywhere in it to refuse later in the
conversation; an unexpected exception closes with 1011 and stays in the log.
"""

import functools
import json
import logging
from collections.abc import Awaitable, Callable, Iterable
from contextlib import suppress

from starlette.websockets import WebSocket, WebSocketDisconnect, WebSocketState

from .admission import Admission
from .credentials import BEARER_SUBPROTOCOL, offers_bearer
from .lifetime import ConnectionLifetime
from .rejections import OPAQUE, Rejection

logger = logging.getLogger(__name__)

Endpoint = Callable[[WebSocket], Awaitable[None]]

MAX_REASON_BYTES = 123  # RFC 6455: a close frame's reason fits in 123 bytes of UTF-8
INTERNAL_ERROR = 1011
STRATEGY = "accept_then_close"


class Rejected(Exception):
    """Raise inside an accept-then-close endpoint to refuse the client from there."""

    def __init__(self, rejection: Rejection) -> None:
        super().__init__(rejection.code)
        self.rejection = rejection


def accept_then_close(scopes: Iterable[str] = ()) -> Callable[[Endpoint], Endpoint]:
    """Accept, admit (needing ``scopes``), run the endpoint; refuse readably."""
    required = frozenset(scopes)

    def decorate(endpoint: Endpoint) -> Endpoint:
        @functools.wraps(endpoint)
        async def admitted_only(websocket: WebSocket) -> None:
            admission: Admission = websocket.app.state.admission
            subprotocols = websocket.scope.get("subprotocols") or []
            try:
                await websocket.accept(BEARER_SUBPROTOCOL if offers_bearer(subprotocols) else None)
                outcome = await admission.admit(websocket.scope, STRATEGY, required)
                if isinstance(outcome, Rejection):
                    await refuse(websocket, outcome)
                    return
                websocket.scope["user"] = outcome.identity.user
                websocket.scope["auth"] = outcome.identity.auth
                async with ConnectionLifetime(admission, outcome, websocket.scope, websocket.send):
                    await endpoint(websocket)
            except Rejected as exc:
                await refuse(websocket, admission.refused(websocket.scope, STRATEGY, exc.rejection))
            except WebSocketDisconnect:
                pass  # the client left; there is nobody to tell
            except Exception:
                # The traceback stays in the server log; the client learns only "internal error".
                logger.exception("WebSocket endpoint %s failed", websocket.scope["path"])
                await close(websocket, INTERNAL_ERROR)
            else:
                await close(websocket, 1000)

        return admitted_only

    return decorate


async def refuse(websocket: WebSocket, rejection: Rejection) -> None:
    """Send the JSON error, then close with 4000 + status and the code as reason."""
    if rejection is not OPAQUE:  # opaque mode: close 4404 with nothing to read
        with suppress(WebSocketDisconnect):
            await websocket.send({"type": "websocket.send", "text": error_message(rejection)})
    await close(websocket, close_code(rejection), rejection.code)


def close_code(rejection: Rejection) -> int:
    # 4000-4999 belong to applications; 4000 + status keeps the HTTP meaning
    # readable after accept (4401, 4403, 4429, ...), as graphql-ws does.
    return 4000 + rejection.status


@functools.lru_cache(maxsize=256)
def error_message(rejection: Rejection) -> str:
    return json.dumps({"error": rejection.code, "detail": rejection.message})


async def close(websocket: WebSocket, code: int, reason: str = "") -> None:
    """Close unless either side already has; a vanished client is not an error."""
    if WebSocketState.DISCONNECTED in (websocket.client_state, websocket.application_state):
        return
    with suppress(WebSocketDisconnect):
        await websocket.close(code, trim_reason(reason))


def trim_reason(reason: str) -> str:
    """Cut to 123 bytes of UTF-8 without splitting a character."""
    return reason.encode()[:MAX_REASON_BYTES].decode("utf-8", "ignore")
