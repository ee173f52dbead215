"""What an admitted connection holds while it is open, and when it must end.

Both strategies run an admitted connection inside ``ConnectionLifetime``:

- ``websocket_connections_open`` counts it;
- its lease (one of the identity's ``WS_MAX_CONNECTIONS_PER_IDENTITY`` slots) is
  given back however the connection ends;
- if its credential expires, the connection is cancelled at that moment and
  closed with 4401 ``token_expired``, so the client knows to get a new one.

Nothing runs per connection besides one timer handle, and only for credentials
that expire; it is cancelled when the connection ends.
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
from .rejections import TOKEN_EXPIRED

logger = logging.getLogger(__name__)

EXPIRED_CLOSE: Message = {
    "type": "websocket.close",
    "code": TOKEN_EXPIRED.close_code,
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
            if self._deadline.cancelled_caught:
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
        # The client may have left, or the endpoint closed already: nothing to tell.
        with suppress(OSError, RuntimeError, WebSocketDisconnect):
            await self._send(EXPIRED_CLOSE)
