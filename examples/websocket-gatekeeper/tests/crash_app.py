"""The app plus an endpoint that fails after accept, to watch the 1011 path on the wire."""

from fastapi import WebSocket

from websocket_gatekeeper.main import app
from websocket_gatekeeper.requirements import (
    refuse_after_accept,
)

SECRET_DETAIL = "database password is hunter2"


@app.websocket_route("/ws/test/crash")
@refuse_after_accept
async def crash(websocket: WebSocket) -> None:
    await websocket.accept()
    await websocket.receive_text()
    raise RuntimeError(SECRET_DETAIL)
