"""What an admitted connection holds while it is open, and when it must end.

Both strategies run an admitted connection inside ``ConnectionLifetime``:

- ``websocket_connections_open`` counts it;
- its lease (one of the identity's ``WS_MAX_CONNECTIONS_PER_IDENTITY`` slots) is
  given back however the connection ends;
- if its credential expires, the connection is cancelled at that moment and
  closed with 4401 ``token_expired``, so the client knows to get a new one.

Nothing runs per connection besides one timer handle, and only for credentials
that expire; it is cancelled when the connection ends.

Expiry cancels the task serving the connection (an anyio ``CancelScope`` with a
deadline, entered here and left in ``__aexit__``, in the same task), then sends
the close itself: through the raw ASGI ``send`` when the connection was admitted
before any ``WebSocket`` object existed, or through ``WebSocket.send`` when it
was admitted after ``accept()``, which keeps that object's state right. If the
client already left, or the endpoint already closed, there is nobody to tell and
nothing is raised; a client that stopped reading cannot block the close.
"""

import logging
import time
from contextlib import suppress
from types import TracebackType

import anyio
from starlette.types import Message, Scope, Send
from starlette.websockets import WebSocketDisconnect

from . import metrics
from .admission import Admission, Admitted, client_address
from .auth import TOKEN_EXPIRED

logger = logging.getLogger(__name__)

# A client that stops reading blocks every send once the buffers are full; the
# close gives up after this long, and the server drops the connection when the
# app returns.
CLOSE_TIMEOUT = 1.0
EXPIRED_CLOSE: Message = {
    "type": "websocket.close",
    "code": 4401,  # the close code of an expired credential, for every strategy
    "reason": TOKEN_EXPIRED.code,
}


class ConnectionLifetime:
    """``async with ConnectionLifetime(admission, admitted, scope, send): <serve it>``."""

    __slots__ = ("_admission", "_admitted", "_deadline", "_scope", "_send")

    def __init__(self, admission: Admission, admitted: Admitted, scope: Scope, send: Send) -> None:
        self._admission = admission
        self._admitted = admitted
        self._scope = scope
        self._send = send  # the ASGI send, or WebSocket.send after accept (keeps its state)
        self._deadline: anyio.CancelScope | None = None

    async def __aenter__(self) -> None:
        metrics.CONNECTIONS_OPEN.inc()
        expires_at = self._admitted.identity.expires_at
        if expires_at is not None:
            # Cancel whatever serves the connection when the credential expires.
            deadline = anyio.current_time() + (expires_at - time.time())
            self._deadline = anyio.CancelScope(deadline=deadline)
            self._deadline.__enter__()

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> bool:
        try:
            if self._deadline is None:
                return False
            swallowed = bool(self._deadline.__exit__(exc_type, exc, traceback))
            # cancel_called, not cancelled_caught: an endpoint that swallowed the
            # cancellation and returned still leaves a connection to close.
            if self._deadline.cancel_called:
                await self._close_expired()
            return swallowed
        finally:
            metrics.CONNECTIONS_OPEN.dec()
            await self._admission.release(self._admitted)

    async def _close_expired(self) -> None:
        logger.info(
            "closed WebSocket %s from %s as %s: %s",
            self._scope["path"],
            client_address(self._scope),
            self._admitted.identity.user.identity,
            TOKEN_EXPIRED.code,
        )
        # The client may have left (OSError from the server, WebSocketDisconnect
        # from Starlette), or the endpoint closed already (RuntimeError).
        with (
            anyio.move_on_after(CLOSE_TIMEOUT),
            suppress(OSError, RuntimeError, WebSocketDisconnect),
        ):
            await self._send(EXPIRED_CLOSE)
