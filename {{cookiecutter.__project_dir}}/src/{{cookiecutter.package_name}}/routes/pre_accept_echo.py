"""The echo endpoint behind ``PreAcceptGuard``: a refused client never gets this far.

A Starlette-style endpoint: it takes the WebSocket and reads what it needs from
``websocket.app.state`` and ``websocket.user``. A ``Depends(...)`` in a WebSocket
endpoint's signature costs FastAPI's dependency solving on every connection (see
docs/benchmarks.md for the measured price). ``endpoints.py`` routes it.
"""

from fastapi import WebSocket

from .echo import echo


async def pre_accept_echo(websocket: WebSocket) -> None:
    await websocket.accept()  # as websocket.user.identity; the guard checked everything
    await echo(websocket)
