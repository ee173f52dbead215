"""The app plus an endpoint that fails after accept, to watch the 1011 path on the wire."""

from fastapi import WebSocket

from websocket_gatekeeper.accept_then_close import (
    accept_then_close,
)
from websocket_gatekeeper.main import app

SECRET_DETAIL = "database password is hunter2"


@app.websocket_route("/ws/test/crash")
@accept_then_close()
async def crash(websocket: WebSocket) -> None:
    await websocket.receive_text()
    raise RuntimeError(SECRET_DETAIL)
