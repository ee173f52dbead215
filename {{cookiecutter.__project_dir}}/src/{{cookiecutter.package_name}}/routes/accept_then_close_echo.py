"""Echo endpoints that accept first and refuse from inside (``accept_then_close``).

Starlette-style routes (``websocket_route``): the endpoint takes the WebSocket
and reads what it needs from ``websocket.app.state`` and ``websocket.user``.
A ``Depends(...)`` in a WebSocket endpoint's signature costs FastAPI's dependency
solving on every connection (see docs/benchmarks.md for the measured price).
"""

from fastapi import APIRouter, WebSocket

from ..accept_then_close import accept_then_close
from .echo import echo

router = APIRouter()


@router.websocket_route("/echo")
@accept_then_close()
async def accept_then_close_echo(websocket: WebSocket) -> None:
    await echo(websocket)


@router.websocket_route("/admin/echo")
@accept_then_close(scopes=["admin"])
async def accept_then_close_admin_echo(websocket: WebSocket) -> None:
    await echo(websocket)
