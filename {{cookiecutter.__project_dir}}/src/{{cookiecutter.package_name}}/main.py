"""Application factory: settings -> admission policy -> routes and guard.

Served as ``uvicorn {{ cookiecutter.package_name }}.main:app`` (see ``__main__.py`` for the
recommended server options).
"""

from fastapi import FastAPI

from .logs import configure_logging
{%- if cookiecutter.rejection_strategy == "both" %}
from .paths import ACCEPT_THEN_CLOSE_PREFIX, PRE_ACCEPT_PREFIX
from .policy import AdmissionPolicy
from .pre_accept import PreAcceptGuard
from .routes import accept_then_close_echo, {% if cookiecutter.browser_demo %}demo, {% endif %}health, pre_accept_echo
{%- elif cookiecutter.rejection_strategy == "pre_accept" %}
from .paths import PRE_ACCEPT_PREFIX
from .policy import AdmissionPolicy
from .pre_accept import PreAcceptGuard
from .routes import {% if cookiecutter.browser_demo %}demo, {% endif %}health, pre_accept_echo
{%- else %}
from .paths import ACCEPT_THEN_CLOSE_PREFIX
from .policy import AdmissionPolicy
from .routes import accept_then_close_echo, {% if cookiecutter.browser_demo %}demo, {% endif %}health
{%- endif %}
from .settings import Settings, load_settings


def create_app(settings: Settings | None = None) -> FastAPI:
    settings = settings or load_settings()
    policy = AdmissionPolicy(settings.auth_tokens, settings.allowed_origins)

    app = FastAPI(title="{{ cookiecutter.package_name }}")
    app.state.settings = settings
    app.state.policy = policy
    app.include_router(health.router)
{%- if cookiecutter.browser_demo %}
    app.include_router(demo.router)  # GET /: what each strategy looks like from a browser
{%- endif %}
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


configure_logging()
app = create_app()
