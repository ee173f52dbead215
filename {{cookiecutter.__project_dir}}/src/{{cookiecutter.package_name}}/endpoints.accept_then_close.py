"""The WebSocket endpoints, each refusing from inside with ``@accept_then_close()``."""

from fastapi import FastAPI

from .paths import ACCEPT_THEN_CLOSE_PREFIX
from .routes import accept_then_close_echo


def install(app: FastAPI) -> None:
    app.include_router(accept_then_close_echo.router, prefix=ACCEPT_THEN_CLOSE_PREFIX)
