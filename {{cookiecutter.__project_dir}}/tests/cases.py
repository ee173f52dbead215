"""Handshakes both strategies must treat the same way, shared by every test module."""

import pytest
from {{ cookiecutter.package_name }}.policy import (
    INVALID_TOKEN,
    MISSING_TOKEN,
    ORIGIN_NOT_ALLOWED,
)

from {{ cookiecutter.package_name }} import paths

TOKEN = "test-token-0123456789abcdef"
SECOND_TOKEN = "second-token-0123456789abcdef"
ALLOWED_ORIGIN = "https://app.example.com"
SETTINGS_ENV = {
    "WS_AUTH_TOKENS": f"{TOKEN},{SECOND_TOKEN}",
    "WS_ALLOWED_ORIGINS": ALLOWED_ORIGIN,
    "WS_MAX_MESSAGE_BYTES": "1024",
}
BEARER = {"authorization": f"Bearer {TOKEN}"}

# (headers, query string, expected rejection). Pass copies of the headers to
# TestClient.websocket_connect: it adds its own handshake headers to the dict.
WRONG = "wrong-token-000000000000"
EVIL = "https://evil.example"
REFUSED = [
    pytest.param({}, "", MISSING_TOKEN, id="no-token"),
    pytest.param({"authorization": "Basic dXNlcjpwYXNz"}, "", MISSING_TOKEN, id="not-bearer"),
    pytest.param({"authorization": "Bearer "}, "", MISSING_TOKEN, id="empty-bearer"),
    pytest.param({"authorization": f"Bearer {WRONG}"}, "", INVALID_TOKEN, id="wrong-header-token"),
    pytest.param({}, f"?token={WRONG}", INVALID_TOKEN, id="wrong-query-token"),
    pytest.param({"authorization": f"Bearer {TOKEN}x"}, "", INVALID_TOKEN, id="token-prefix"),
    pytest.param({**BEARER, "origin": EVIL}, "", ORIGIN_NOT_ALLOWED, id="foreign-origin"),
    pytest.param(
        {**BEARER, "origin": f"{ALLOWED_ORIGIN}.evil"}, "", ORIGIN_NOT_ALLOWED, id="suffix"
    ),
    pytest.param({**BEARER, "origin": "null"}, "", ORIGIN_NOT_ALLOWED, id="null-origin"),
    pytest.param(
        {"origin": EVIL}, f"?token={TOKEN}", ORIGIN_NOT_ALLOWED, id="foreign-origin-query"
    ),
]

# (headers, query string) of clients that must get through
ADMITTED = [
    pytest.param(BEARER, "", id="header-token"),
    pytest.param({"authorization": f"bearer {SECOND_TOKEN}"}, "", id="second-token"),
    pytest.param({}, f"?token={TOKEN}", id="query-token"),
    pytest.param({"origin": ALLOWED_ORIGIN}, f"?token={TOKEN}", id="allowed-origin"),
]

# Every guarded echo endpoint this project has (one per strategy it was generated with).
ECHO_PATHS = list(paths.ECHO_ENDPOINTS.values())
