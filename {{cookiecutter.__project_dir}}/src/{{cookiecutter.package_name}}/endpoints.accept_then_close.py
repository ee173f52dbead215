"""The WebSocket endpoints, each refusing from inside with ``@accept_then_close()``."""

from fastapi import FastAPI

from .paths import ADMIN_ECHO_ENDPOINTS, ECHO_ENDPOINTS
from .routes.accept_then_close_echo import accept_then_close_admin_echo, accept_then_close_echo


def install(app: FastAPI) -> None:
    """Route the WebSocket paths; main.py calls this before adding HTTP routes.

    Plain routes on the app's own router, tried first: an included ``APIRouter``
    is matched through an extra layer on every handshake (docs/benchmarks.md).
    """
    app.router.add_websocket_route(ECHO_ENDPOINTS["accept_then_close"], accept_then_close_echo)
    app.router.add_websocket_route(
        ADMIN_ECHO_ENDPOINTS["accept_then_close"], accept_then_close_admin_echo
    )
