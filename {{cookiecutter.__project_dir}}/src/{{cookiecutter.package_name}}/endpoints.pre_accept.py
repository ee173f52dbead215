"""The WebSocket endpoints, all refused before accept by ``PreAcceptGuard``."""

from fastapi import FastAPI

from .paths import PRE_ACCEPT_PREFIX
from .pre_accept import PreAcceptGuard
from .routes import pre_accept_echo


def install(app: FastAPI) -> None:
    app.include_router(pre_accept_echo.router, prefix=PRE_ACCEPT_PREFIX)
    # Every WebSocket path is guarded, including routes you add later.
    app.add_middleware(
        PreAcceptGuard,
        admission=app.state.admission,
        scopes={PRE_ACCEPT_PREFIX + path: s for path, s in pre_accept_echo.REQUIRED_SCOPES.items()},
    )
