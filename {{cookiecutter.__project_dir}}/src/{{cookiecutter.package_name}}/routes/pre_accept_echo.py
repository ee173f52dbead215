"""Echo endpoints behind ``PreAcceptGuard``: a refused client never gets this far.

Starlette-style routes (``websocket_route``): the endpoint takes the WebSocket
and reads what it needs from ``websocket.app.state`` and ``websocket.user``.
A ``Depends(...)`` in a WebSocket endpoint's signature costs FastAPI's dependency
solving on every connection (see docs/benchmarks.md for the measured price).
"""

from fastapi import APIRouter, WebSocket

from .echo import echo

router = APIRouter()

# The guard runs before routing, so it learns each route's scopes from here.
REQUIRED_SCOPES = {"/admin/echo": frozenset({"admin"})}


@router.websocket_route("/echo")
@router.websocket_route("/admin/echo")
async def pre_accept_echo(websocket: WebSocket) -> None:
    await websocket.accept()
    await echo(websocket)
