"""The demo conversation the guard protects: echo every message back.
{%- if cookiecutter.rejection_strategy == "both" %}

Each strategy on its own routes, so both can be compared side by side: under
``/ws/pre-accept/`` routes that declare nothing (refused before accept, the
default for new routes), under ``/ws/accept-then-close/`` their twins marked
``@refuse_after_accept``. The ``admin/echo`` routes need the ``admin`` scope.
{%- else %}

``/ws/echo`` admits any valid credential; ``/ws/admin/echo`` only one that grants
the ``admin`` scope.
{%- endif %}

These are Starlette-style endpoints (they take the ``WebSocket`` and nothing
else), routed on the app's own router: FastAPI's dependency solving and an
included router's extra matching layer each cost something on every handshake
(docs/performance.md). Your own routes can use ``@app.websocket``, routers and
``Depends`` as usual; the guard covers them the same way (docs/routes.md).
"""

from fastapi import FastAPI
from starlette.websockets import WebSocket, WebSocketDisconnect

from ..requirements import {% if cookiecutter.rejection_strategy == "both" %}refuse_after_accept, {% endif %}requires

ADMIN_SCOPE = "admin"
MESSAGE_TOO_BIG = 1009
{%- if cookiecutter.rejection_strategy == "both" %}
PRE_ACCEPT_PREFIX = "/ws/pre-accept"
ACCEPT_THEN_CLOSE_PREFIX = "/ws/accept-then-close"
{%- endif %}


def add_echo_routes(app: FastAPI) -> None:
{%- if cookiecutter.rejection_strategy == "both" %}
    app.router.add_websocket_route(f"{PRE_ACCEPT_PREFIX}/echo", echo)
    app.router.add_websocket_route(f"{PRE_ACCEPT_PREFIX}/admin/echo", admin_echo)
    app.router.add_websocket_route(f"{ACCEPT_THEN_CLOSE_PREFIX}/echo", echo_after_accept)
    app.router.add_websocket_route(
        f"{ACCEPT_THEN_CLOSE_PREFIX}/admin/echo", admin_echo_after_accept
    )
{%- else %}
    app.router.add_websocket_route("/ws/echo", echo)
    app.router.add_websocket_route("/ws/admin/echo", admin_echo)
{%- endif %}


async def echo(websocket: WebSocket) -> None:
    await websocket.accept()  # as websocket.user; the guard checked everything
    await echo_messages(websocket)


@requires(ADMIN_SCOPE)
async def admin_echo(websocket: WebSocket) -> None:
    await websocket.accept()
    await echo_messages(websocket)
{%- if cookiecutter.rejection_strategy == "both" %}


@refuse_after_accept
async def echo_after_accept(websocket: WebSocket) -> None:
    await websocket.accept()
    await echo_messages(websocket)


@refuse_after_accept
@requires(ADMIN_SCOPE)
async def admin_echo_after_accept(websocket: WebSocket) -> None:
    await websocket.accept()
    await echo_messages(websocket)
{%- endif %}


async def echo_messages(websocket: WebSocket) -> None:
    """Echo text and binary messages until the client leaves.

    An oversized message closes the socket with 1009. (The server's own
    ``ws_max_size``, set by ``python -m ...``, stops it earlier, before buffering.)
    """
    max_bytes = websocket.app.state.settings.max_message_bytes
    try:
        while True:
            message = await websocket.receive()
            if message["type"] == "websocket.disconnect":
                return
            text, data = message.get("text"), message.get("bytes")
            size = len(text.encode()) if text is not None else len(data or b"")
            if size > max_bytes:
                await websocket.close(MESSAGE_TOO_BIG, "message too big")
                return
            if text is not None:
                await websocket.send_text(text)
            else:
                await websocket.send_bytes(data or b"")
    except WebSocketDisconnect:
        return  # the client vanished between our receive and our send
