"""The app plus an endpoint that returns without answering the handshake: a real bug."""

from fastapi import WebSocket

from {{ cookiecutter.package_name }}.main import app

BROKEN = "/ws/test/broken"


@app.websocket_route(BROKEN)
async def broken(websocket: WebSocket) -> None:
    return  # forgot to accept: uvicorn must still say so at ERROR
