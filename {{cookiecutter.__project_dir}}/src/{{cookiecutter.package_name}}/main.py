"""Application factory: settings -> admission pipeline -> routes, guard and store.

Served by ``python -m`` on this package (the recommended uvicorn options, see
``__main__.py``), by ``uvicorn <package>.main:app``, or by ``fastapi run``.
"""

import gc
import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI

from . import endpoints, metrics
from .admission import Admission
from .auth import CredentialVerifier
from .logs import configure_logging
from .not_found import refuse_unknown_websocket_paths
from .routes import {% if cookiecutter.browser_demo %}demo, {% endif %}health, ready, tickets
from .settings import Settings, load_settings
from .store import MemoryStore, Store
from .store_redis import RedisStore

logger = logging.getLogger(__name__)

# Each open connection holds about 120 objects the garbage collector tracks; at
# CPython's default threshold (700 allocations) a storm of 10,000 reconnecting
# clients spent seconds of CPU in collections. At 10,000 the storm was admitted
# in 1.03-1.13x a raw ASGI app's time instead of 1.62-1.80x (docs/benchmarks.md);
# the price is rarer but longer collections (tens of ms under such a storm).
GC_THRESHOLD = 10_000

# FastAPI (0.16x) looks up OpenTelemetry's providers on every request and every
# WebSocket handshake, even with no OpenTelemetry SDK installed: about a tenth of
# what a refused handshake costs this app (docs/benchmarks.md). This service
# reports through /metrics and its logs; to trace it with OpenTelemetry, remove this.
NO_TELEMETRY = {"tracing": False, "metrics": False, "logs": False}


def open_store(settings: Settings) -> Store:
    if settings.limits_storage_url == "memory://":
        return MemoryStore()
    return RedisStore(settings.limits_storage_url, settings.connection_lease_seconds)


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
    collecting = gc.get_threshold()
    gc.set_threshold(GC_THRESHOLD, *collecting[1:])
    await admission.store.start()
    try:
        await admission.verifier.start()
        yield
    finally:
        await admission.store.close()
        gc.set_threshold(*collecting)


def create_app(settings: Settings | None = None) -> FastAPI:
    settings = settings or load_settings()
    admission = Admission(settings, CredentialVerifier(settings), open_store(settings))

    app = FastAPI(
        title="{{ cookiecutter.package_name }}",
        lifespan=lifespan,
        telemetry=NO_TELEMETRY,
    )
    app.state.settings = settings
    app.state.admission = admission
    # WebSocket routes first: a handshake is matched against the routes in order.
    endpoints.install(app)
    app.include_router(health.router)
    app.include_router(ready.router)
    app.include_router(tickets.router)
    app.include_router(metrics.router)
{%- if cookiecutter.browser_demo %}
    app.include_router(demo.router)  # GET /: what a browser sees when refused or admitted
{%- endif %}
    refuse_unknown_websocket_paths(app, admission)
    return app


configure_logging()
app = create_app()
