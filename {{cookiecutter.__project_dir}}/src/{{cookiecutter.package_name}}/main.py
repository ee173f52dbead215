"""Application factory: settings -> admission policy -> routes and guard.

Served as ``uvicorn {{ cookiecutter.package_name }}.main:app`` (see ``__main__.py`` for the
recommended server options).
"""

import logging

from fastapi import FastAPI

from .policy import AdmissionPolicy
{%- if cookiecutter.rejection_strategy == "both" %}
from .pre_accept import PreAcceptGuard
from .routes import accept_then_close_echo, health, pre_accept_echo
{%- elif cookiecutter.rejection_strategy == "pre_accept" %}
from .pre_accept import PreAcceptGuard
from .routes import health, pre_accept_echo
{%- else %}
from .routes import accept_then_close_echo, health
{%- endif %}
from .settings import Settings, load_settings

{% if cookiecutter.rejection_strategy == "both" -%}
# Each strategy on its own routes, so both can be compared side by side.
PRE_ACCEPT_PREFIX = "/ws/pre-accept"
ACCEPT_THEN_CLOSE_PREFIX = "/ws/accept-then-close"
{%- elif cookiecutter.rejection_strategy == "pre_accept" -%}
PRE_ACCEPT_PREFIX = "/ws"
{%- else -%}
ACCEPT_THEN_CLOSE_PREFIX = "/ws"
{%- endif %}


def create_app(settings: Settings | None = None) -> FastAPI:
    settings = settings or load_settings()
    policy = AdmissionPolicy(settings.auth_tokens, settings.allowed_origins)

    app = FastAPI(title="{{ cookiecutter.package_name }}")
    app.state.settings = settings
    app.state.policy = policy
    app.include_router(health.router)
{%- if cookiecutter.rejection_strategy == "both" %}
    app.include_router(pre_accept_echo.router, prefix=PRE_ACCEPT_PREFIX)
    # Guard only the pre-accept routes; the others refuse from inside the endpoint.
    app.add_middleware(PreAcceptGuard, policy=policy, path_prefix=PRE_ACCEPT_PREFIX + "/")
    app.include_router(accept_then_close_echo.router, prefix=ACCEPT_THEN_CLOSE_PREFIX)
{%- elif cookiecutter.rejection_strategy == "pre_accept" %}
    app.include_router(pre_accept_echo.router, prefix=PRE_ACCEPT_PREFIX)
    # Every WebSocket route is guarded, including the ones you add later.
    app.add_middleware(PreAcceptGuard, policy=policy)
{%- else %}
    app.include_router(accept_then_close_echo.router, prefix=ACCEPT_THEN_CLOSE_PREFIX)
{%- endif %}
    return app


def share_uvicorn_logging() -> None:
    """Print this package's log lines through uvicorn's handlers, at its --log-level."""
    package_logger = logging.getLogger(__package__)
    uvicorn_logger = logging.getLogger("uvicorn")
    if uvicorn_logger.handlers and not package_logger.handlers:
        package_logger.setLevel(logging.getLogger("uvicorn.error").getEffectiveLevel())
        for handler in uvicorn_logger.handlers:
            package_logger.addHandler(handler)
        package_logger.propagate = False


share_uvicorn_logging()
app = create_app()
