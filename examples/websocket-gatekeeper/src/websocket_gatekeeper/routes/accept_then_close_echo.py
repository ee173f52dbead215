"""Echo endpoints that accept first and refuse from inside (``@accept_then_close``).

Starlette-style endpoints: they take the WebSocket and read what they need from
``websocket.app.state`` and ``websocket.user``. A ``Depends(...)`` in a WebSocket
endpoint's signature costs FastAPI's dependency solving on every connection (see
docs/benchmarks.md for the measured price). ``endpoints.py`` routes them.
"""

from fastapi import WebSocket

from ..accept_then_close import accept_then_close
from ..paths import ADMIN_SCOPE
from .echo import echo


@accept_then_close()
async def accept_then_close_echo(websocket: WebSocket) -> None:
    await echo(websocket)


@accept_then_close(scopes=[ADMIN_SCOPE])
async def accept_then_close_admin_echo(websocket: WebSocket) -> None:
    await echo(websocket)
