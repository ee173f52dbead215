"""The WebSocket endpoints: each strategy on its own routes, side by side."""

from fastapi import APIRouter, FastAPI
from starlette.routing import WebSocketRoute

from .paths import ACCEPT_THEN_CLOSE_PREFIX, PRE_ACCEPT_PREFIX
from .pre_accept import PreAcceptGuard
from .routes import accept_then_close_echo, pre_accept_echo


def install(app: FastAPI) -> None:
    """Add the WebSocket routes and the guard; call before adding other routes."""
    add_websocket_routes(app, pre_accept_echo.router, PRE_ACCEPT_PREFIX)
    # Guard only the pre-accept routes; the others refuse from inside the endpoint.
    app.add_middleware(
        PreAcceptGuard,
        admission=app.state.admission,
        path_prefix=PRE_ACCEPT_PREFIX + "/",
        scopes={PRE_ACCEPT_PREFIX + path: s for path, s in pre_accept_echo.REQUIRED_SCOPES.items()},
    )
    add_websocket_routes(app, accept_then_close_echo.router, ACCEPT_THEN_CLOSE_PREFIX)


def add_websocket_routes(app: FastAPI, router: APIRouter, prefix: str) -> None:
    """The router's WebSocket routes as plain routes of the app, ahead of the HTTP ones.

    ``app.include_router`` would also work, but FastAPI matches included routers
    through an extra layer on every handshake, and routes listed earlier are tried
    first: this way costs about 20 µs less per connection (docs/benchmarks.md).
    """
    for route in router.routes:
        if isinstance(route, WebSocketRoute):
            app.router.add_websocket_route(prefix + route.path, route.endpoint, route.name)
