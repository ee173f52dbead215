"""The WebSocket endpoints: each strategy on its own routes, side by side."""

from fastapi import FastAPI

from .paths import ACCEPT_THEN_CLOSE_PREFIX, PRE_ACCEPT_PREFIX
from .pre_accept import PreAcceptGuard
from .routes import accept_then_close_echo, pre_accept_echo


def install(app: FastAPI) -> None:
    app.include_router(pre_accept_echo.router, prefix=PRE_ACCEPT_PREFIX)
    # Guard only the pre-accept routes; the others refuse from inside the endpoint.
    app.add_middleware(
        PreAcceptGuard,
        admission=app.state.admission,
        path_prefix=PRE_ACCEPT_PREFIX + "/",
        scopes={PRE_ACCEPT_PREFIX + path: s for path, s in pre_accept_echo.REQUIRED_SCOPES.items()},
    )
    app.include_router(accept_then_close_echo.router, prefix=ACCEPT_THEN_CLOSE_PREFIX)
