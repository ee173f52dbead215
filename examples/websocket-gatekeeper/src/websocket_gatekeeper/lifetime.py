"""What an admitted connection holds while it is open.

Both strategies run an admitted connection inside ``ConnectionLifetime``:

- ``websocket_connections_open`` counts it;
- its lease (one of the identity's ``WS_MAX_CONNECTIONS_PER_IDENTITY`` slots) is
  given back however the connection ends.
"""

from starlette.types import Scope, Send

from . import metrics
from .admission import Admission, Admitted


class ConnectionLifetime:
    """``async with ConnectionLifetime(admission, admitted, scope, send): <serve it>``."""

    __slots__ = ("_admission", "_admitted")

    def __init__(
        self, admission: Admission, admitted: Admitted, _scope: Scope, _send: Send
    ) -> None:
        # API tokens do not expire: nothing ever has to be closed from here, so the
        # scope and send that the callers pass are not needed.
        self._admission = admission
        self._admitted = admitted

    async def __aenter__(self) -> None:
        metrics.CONNECTIONS_OPEN.inc()

    async def __aexit__(self, *_exc_info: object) -> None:
        metrics.CONNECTIONS_OPEN.dec()
        await self._admission.release(self._admitted)
