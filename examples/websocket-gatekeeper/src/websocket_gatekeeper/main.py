"""Application factory: settings -> admission policy -> routes and guard.

Served as ``uvicorn websocket_gatekeeper.main:app`` (see ``__main__.py`` for the
recommended server options).
"""

from fastapi import FastAPI

from .logs import configure_logging
from .paths import ACCEPT_THEN_CLOSE_PREFIX, PRE_ACCEPT_PREFIX
from .policy import AdmissionPolicy
from .pre_accept import PreAcceptGuard
from .routes import accept_then_close_echo, demo, health, pre_accept_echo
from .settings import Settings, load_settings


def create_app(settings: Settings | None = None) -> FastAPI:
    settings = settings or load_settings()
    policy = AdmissionPolicy(settings.auth_tokens, settings.allowed_origins)

    app = FastAPI(title="websocket_gatekeeper")
    app.state.settings = settings
    app.state.policy = policy
    app.include_router(health.router)
    app.include_router(demo.router)  # GET /: what each strategy looks like from a browser
    app.include_router(pre_accept_echo.router, prefix=PRE_ACCEPT_PREFIX)
    # Guard only the pre-accept routes; the others refuse from inside the endpoint.
    app.add_middleware(PreAcceptGuard, policy=policy, path_prefix=PRE_ACCEPT_PREFIX + "/")
    app.include_router(accept_then_close_echo.router, prefix=ACCEPT_THEN_CLOSE_PREFIX)
    return app


configure_logging()
app = create_app()
