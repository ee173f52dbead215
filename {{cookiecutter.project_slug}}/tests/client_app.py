"""The app plus endpoints that end sessions the ways the clients must handle.

``/ws/test/close/{code}?key=K&times=N&reason=R``: the first N connections with
that key are accepted and closed with ``code`` / ``reason``; later ones echo.
``/ws/test/crash``: accepts, reads one message, fails (the guard closes 1011).
Both are public: the clients' policy is under test, not admission.
"""

from collections import Counter

from fastapi import WebSocket

from {{ cookiecutter.package_name }}.main import app
from {{ cookiecutter.package_name }}.requirements import public
from {{ cookiecutter.package_name }}.routes.echo import (
    echo_messages,
)

closed_so_far: Counter[str] = Counter()


@app.websocket_route("/ws/test/close/{code:int}")
@public
async def close_with(websocket: WebSocket) -> None:
    await websocket.accept()
    key = websocket.query_params.get("key", "")
    if closed_so_far[key] < int(websocket.query_params.get("times", "1000000")):
        closed_so_far[key] += 1
        reason = websocket.query_params.get("reason", "")
        await websocket.close(websocket.path_params["code"], reason)
        return
    await echo_messages(websocket)


@app.websocket_route("/ws/test/crash")
@public
async def crash(websocket: WebSocket) -> None:
    await websocket.accept()
    await websocket.receive_text()
    raise RuntimeError("the endpoint failed")
