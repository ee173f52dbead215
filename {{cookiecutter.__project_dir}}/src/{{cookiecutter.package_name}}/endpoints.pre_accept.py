"""The WebSocket endpoints, all refused before accept by ``PreAcceptGuard``."""

from fastapi import FastAPI
from starlette.routing import WebSocketRoute

from .paths import PRE_ACCEPT_PREFIX
from .pre_accept import PreAcceptGuard
from .routes import pre_accept_echo


def install(app: FastAPI) -> None:
    """Add the WebSocket routes and the guard; call before adding other routes."""
    # The router's routes as plain routes of the app, ahead of the HTTP ones.
    # ``app.include_router`` would also work, but FastAPI matches included routers
    # through an extra layer on every handshake, and routes listed earlier are tried
    # first: this way costs about 20 µs less per connection (docs/benchmarks.md).
    for route in pre_accept_echo.router.routes:
        if isinstance(route, WebSocketRoute):
            app.router.add_websocket_route(
                PRE_ACCEPT_PREFIX + route.path, route.endpoint, route.name
            )
    # Every WebSocket path is guarded, including routes you add later.
    app.add_middleware(
        PreAcceptGuard,
        admission=app.state.admission,
        scopes={PRE_ACCEPT_PREFIX + path: s for path, s in pre_accept_echo.REQUIRED_SCOPES.items()},
    )
