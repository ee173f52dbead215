"""The WebSocket endpoints and how each refuses: both strategies, side by side."""

from fastapi import FastAPI

from .paths import ADMIN_ECHO_ENDPOINTS, ADMIN_SCOPE, ECHO_ENDPOINTS, PRE_ACCEPT_PREFIX
from .pre_accept import PreAcceptGuard
from .routes.accept_then_close_echo import accept_then_close_admin_echo, accept_then_close_echo
from .routes.pre_accept_echo import pre_accept_echo


def install(app: FastAPI) -> None:
    """Route the WebSocket paths; main.py calls this before adding HTTP routes.

    Plain routes on the app's own router, tried first: an included ``APIRouter``
    is matched through an extra layer on every handshake (docs/benchmarks.md).
    """
    app.router.add_websocket_route(ECHO_ENDPOINTS["pre_accept"], pre_accept_echo)
    app.router.add_websocket_route(ADMIN_ECHO_ENDPOINTS["pre_accept"], pre_accept_echo)
    # Guard only the pre-accept routes; the others refuse from inside the endpoint.
    # The guard runs before routing, so it is told which paths need which scopes.
    app.add_middleware(
        PreAcceptGuard,
        admission=app.state.admission,
        path_prefix=PRE_ACCEPT_PREFIX + "/",
        scopes={ADMIN_ECHO_ENDPOINTS["pre_accept"]: frozenset({ADMIN_SCOPE})},
    )
    app.router.add_websocket_route(ECHO_ENDPOINTS["accept_then_close"], accept_then_close_echo)
    app.router.add_websocket_route(
        ADMIN_ECHO_ENDPOINTS["accept_then_close"], accept_then_close_admin_echo
    )
