"""Handshakes every strategy must treat the same way, shared by every test module."""

import base64

import pytest

from {{ cookiecutter.package_name }}.rejections import (
    INVALID_TICKET,
    INVALID_TOKEN,
    MISSING_TOKEN,
    ORIGIN_NOT_ALLOWED,
)

from credentials import AUTH_ENV, SECOND_TOKEN, TOKEN, WRONG_TOKEN

ALLOWED_ORIGIN = "https://app.example.com"
SETTINGS_ENV = {
    **AUTH_ENV,
    "WS_ALLOWED_ORIGINS": ALLOWED_ORIGIN,
    "WS_MAX_MESSAGE_BYTES": "1024",
    # High enough never to fire in tests that are not about it, so the check still runs.
    "WS_HANDSHAKE_RATE_LIMIT": "100000/second",
    "WS_LIMITS_STORAGE_URL": "memory://",
}
BEARER = {"authorization": f"Bearer {TOKEN}"}


def carrier(credential: str) -> str:
    """The ``bearer.<base64url>`` subprotocol that carries a credential."""
    return "bearer." + base64.urlsafe_b64encode(credential.encode()).rstrip(b"=").decode()


def subprotocols_for(credential: str) -> list[str]:
    return ["bearer", carrier(credential)]


# (headers, query string, subprotocols, expected rejection). Pass copies of the
# headers to TestClient.websocket_connect: it adds its own handshake headers.
EVIL = "https://evil.example"
REFUSED = [
    pytest.param({}, "", [], MISSING_TOKEN, id="no-token"),
    pytest.param({"authorization": "Basic dXNlcjpwYXNz"}, "", [], MISSING_TOKEN, id="not-bearer"),
    pytest.param({"authorization": "Bearer "}, "", [], MISSING_TOKEN, id="empty-bearer"),
    pytest.param(
        {"authorization": f"Bearer {WRONG_TOKEN}"}, "", [], INVALID_TOKEN, id="wrong-header-token"
    ),
    pytest.param({}, f"?token={WRONG_TOKEN}", [], INVALID_TOKEN, id="wrong-query-token"),
    pytest.param(
        {}, "", subprotocols_for(WRONG_TOKEN), INVALID_TOKEN, id="wrong-subprotocol-token"
    ),
    pytest.param({"authorization": f"Bearer {TOKEN}x"}, "", [], INVALID_TOKEN, id="token-suffix"),
    pytest.param({}, "?ticket=never-issued-0123456789", [], INVALID_TICKET, id="unknown-ticket"),
    pytest.param({**BEARER, "origin": EVIL}, "", [], ORIGIN_NOT_ALLOWED, id="foreign-origin"),
    pytest.param(
        {**BEARER, "origin": f"{ALLOWED_ORIGIN}.evil"}, "", [], ORIGIN_NOT_ALLOWED, id="suffix"
    ),
    pytest.param({**BEARER, "origin": "null"}, "", [], ORIGIN_NOT_ALLOWED, id="null-origin"),
    pytest.param(
        {"origin": EVIL}, f"?token={TOKEN}", [], ORIGIN_NOT_ALLOWED, id="foreign-origin-query"
    ),
]

# (headers, query string, subprotocols) of clients that must get through
ADMITTED = [
    pytest.param(BEARER, "", [], id="header-token"),
    pytest.param({"authorization": f"bearer {SECOND_TOKEN}"}, "", [], id="second-token"),
    pytest.param({}, f"?token={TOKEN}", [], id="query-token"),
    pytest.param({}, "", subprotocols_for(TOKEN), id="subprotocol-token"),
    pytest.param({"origin": ALLOWED_ORIGIN}, f"?token={TOKEN}", [], id="allowed-origin"),
]

# The demo's echo routes, {strategy: path}, one per strategy this project has
# (routes/echo.py), and their twins needing the "admin" scope.
{%- if cookiecutter.rejection_strategy == "both" %}
PRE_ACCEPT_PREFIX = "/ws/pre-accept"
ACCEPT_THEN_CLOSE_PREFIX = "/ws/accept-then-close"
ECHO_ENDPOINTS = {
    "pre_accept": f"{PRE_ACCEPT_PREFIX}/echo",
    "accept_then_close": f"{ACCEPT_THEN_CLOSE_PREFIX}/echo",
}
ADMIN_ECHO_ENDPOINTS = {
    "pre_accept": f"{PRE_ACCEPT_PREFIX}/admin/echo",
    "accept_then_close": f"{ACCEPT_THEN_CLOSE_PREFIX}/admin/echo",
}
{%- else %}
{{ cookiecutter.rejection_strategy | upper }}_PREFIX = "/ws"
ECHO_ENDPOINTS = {"{{ cookiecutter.rejection_strategy }}": "/ws/echo"}
ADMIN_ECHO_ENDPOINTS = {"{{ cookiecutter.rejection_strategy }}": "/ws/admin/echo"}
{%- endif %}
ECHO_PATHS = list(ECHO_ENDPOINTS.values())
ADMIN_ECHO_PATHS = list(ADMIN_ECHO_ENDPOINTS.values())
