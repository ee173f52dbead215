"""The WebSocket endpoints, each refusing from inside with ``@accept_then_close()``."""

from fastapi import FastAPI
from starlette.routing import WebSocketRoute

from .paths import ACCEPT_THEN_CLOSE_PREFIX
from .routes import accept_then_close_echo


def install(app: FastAPI) -> None:
    """Add the WebSocket routes; call before adding other routes."""
    # The router's routes as plain routes of the app, ahead of the HTTP ones.
    # ``app.include_router`` would also work, but FastAPI matches included routers
    # through an extra layer on every handshake, and routes listed earlier are tried
    # first: this way costs about 20 µs less per connection (docs/benchmarks.md).
    for route in accept_then_close_echo.router.routes:
        if isinstance(route, WebSocketRoute):
            app.router.add_websocket_route(
                ACCEPT_THEN_CLOSE_PREFIX + route.path, route.endpoint, route.name
            )
