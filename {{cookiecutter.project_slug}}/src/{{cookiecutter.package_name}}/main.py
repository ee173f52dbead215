"""Application factory: settings -> admission pipeline -> routes, guard and store.

Served by ``python -m`` on this package (the recommended uvicorn options, see
``__main__.py``), by ``uvicorn <package>.main:app``, or by ``fastapi run``.
"""

import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI
{%- if cookiecutter.authentication == "jwt" %}
from starlette.types import ASGIApp, Message, Receive, Scope, Send
{%- endif %}

from . import metrics
from .admission import Admission
from .auth import CredentialVerifier
from .governance import Governance
from .guard import guard_websockets
from .logs import configure_logging
from .revocations import RedisRevocations, Revocations
from .routes import {% if cookiecutter.browser_demo %}demo, {% endif %}health, ready, revocations, tickets, websocket_client
from .routes.echo import add_echo_routes
from .settings import Settings, load_settings
from .store import MemoryStore, Store
from .store_redis import RedisStore

logger = logging.getLogger(__name__)

# FastAPI (0.16x) looks up OpenTelemetry's providers on every request and every
# WebSocket handshake, even with no OpenTelemetry SDK installed, a measurable share
# of a refused handshake (docs/performance.md). This service reports through
# /metrics and its logs; to trace it with OpenTelemetry, remove this.
NO_TELEMETRY = {"tracing": False, "metrics": False, "logs": False}


def open_store(settings: Settings) -> Store:
    if settings.limits_storage_url == "memory://":
        return MemoryStore(settings.max_tracked_addresses)
    return RedisStore(settings.limits_storage_url, settings.connection_lease_seconds)


def open_revocations(settings: Settings) -> Revocations:
    """The deny-list, shared the way the store is: in process, or through Redis."""
    if settings.limits_storage_url == "memory://":
        return Revocations()
    return RedisRevocations(settings.limits_storage_url)


@asynccontextmanager
async def lifespan(app: FastAPI) -> AsyncIterator[None]:
    settings: Settings = app.state.settings
    admission: Admission = app.state.admission
    if not settings.allowed_origins:
        logger.warning(
            "WS_ALLOWED_ORIGINS is empty: every browser page is refused (origin_not_allowed). "
            "List your pages' origins, e.g. WS_ALLOWED_ORIGINS=http://127.0.0.1:8000 "
            "(cp .env.example .env sets that for local development)"
        )
    governance: Governance = app.state.governance
    await admission.store.start()
    try:
        await admission.revocations.start()
        await governance.start()
        await admission.verifier.start()
        try:
            yield
        finally:
            await admission.verifier.close()
    finally:
        await governance.close()
        await admission.revocations.close()
        await admission.store.close()
{%- if cookiecutter.authentication == "jwt" %}


class StartupExit:
    """A ``SystemExit("...")`` raised while the app starts stops it with that text alone.

    With discovery, the issuer's document is only read in the lifespan; one that
    cannot be used is a bad setting (auth.py), reported like those of settings.py:
    ``Invalid configuration:`` and a line naming the variable. Starlette reports
    whatever stopped the lifespan with its traceback, which uvicorn logs at ERROR;
    this puts the text in its place. uvicorn then logs "Application startup failed.
    Exiting." and exits with status 3, under the launcher, plain uvicorn or
    ``fastapi run`` alike.
    """

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "lifespan":
            await self.app(scope, receive, send)
            return
        failed: list[Message] = []

        async def report(message: Message) -> None:
            if message["type"] == "lifespan.startup.failed":
                failed.append(message)  # sent below, once the exception is known
            else:
                await send(message)

        try:
            await self.app(scope, receive, report)
        except SystemExit as stop:
            if failed and isinstance(stop.code, str):
                failed[0] = {**failed[0], "message": stop.code}
            raise
        finally:
            if failed:
                await send(failed[0])
{%- endif %}


def create_app(settings: Settings | None = None) -> FastAPI:
    settings = settings or load_settings()
    admission = Admission(
        settings, CredentialVerifier(settings), open_store(settings), open_revocations(settings)
    )
    governance = Governance.from_settings(settings)
    governance.watch(admission)  # closes revoked identities' connections, converges the cap

    app = FastAPI(
        title="{{ cookiecutter.package_name }}",
        lifespan=lifespan,
        telemetry=NO_TELEMETRY,
    )
    app.state.settings = settings
    app.state.admission = admission
    app.state.governance = governance
    add_echo_routes(app)  # WebSocket routes first: a handshake is matched in order
    app.include_router(health.router)
    app.include_router(ready.router)
    app.include_router(tickets.router)
    app.include_router(revocations.router)
    app.include_router(metrics.router)
    app.include_router(websocket_client.router)  # GET /ws-client.js, for your own pages
{%- if cookiecutter.browser_demo %}
    app.include_router(demo.router)  # GET /: what a browser sees when refused or admitted
{%- endif %}
    # Every WebSocket route, these and any added later, is admitted by the guard.
    guard_websockets(app, admission, governance)
{%- if cookiecutter.authentication == "jwt" %}
    app.add_middleware(StartupExit)  # an unusable discovery document: one line, no traceback
{%- endif %}
    return app


configure_logging()
app = create_app()
