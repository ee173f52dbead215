"""The WebSocket endpoints, all refused before accept by ``PreAcceptGuard``."""

from fastapi import FastAPI

from .paths import ADMIN_ECHO_ENDPOINTS, ADMIN_SCOPE, ECHO_ENDPOINTS
from .pre_accept import PreAcceptGuard
from .routes.pre_accept_echo import pre_accept_echo


def install(app: FastAPI) -> None:
    """Route the WebSocket paths; main.py calls this before adding HTTP routes.

    Plain routes on the app's own router, tried first: an included ``APIRouter``
    is matched through an extra layer on every handshake (docs/benchmarks.md).
    """
    app.router.add_websocket_route(ECHO_ENDPOINTS["pre_accept"], pre_accept_echo)
    app.router.add_websocket_route(ADMIN_ECHO_ENDPOINTS["pre_accept"], pre_accept_echo)
    # Every WebSocket path is guarded, including routes you add later. The guard
    # runs before routing, so it is told which paths need which scopes.
    app.add_middleware(
        PreAcceptGuard,
        admission=app.state.admission,
        scopes={ADMIN_ECHO_ENDPOINTS["pre_accept"]: frozenset({ADMIN_SCOPE})},
    )
