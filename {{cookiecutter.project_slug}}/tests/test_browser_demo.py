"""The demo page in a real headless Chromium against a live server: every credential
channel a browser has, and exactly what JavaScript sees for each.

Needs a Chromium: $CHROMIUM, or chromium / chromium-browser / google-chrome on PATH
(Debian: apt-get install chromium). Without one the tests are skipped with a loud
reason, or fail where REQUIRE_CHROMIUM is set (CI). No browser is downloaded.

The demo's screenshot goes to a temporary folder; ``UPDATE_SCREENSHOT=1`` writes
it over the committed ``docs/browser-demo.png`` instead (a test never changes a
tracked file unless asked to).
"""

import json
import os
import re
import shutil
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient
from playwright.sync_api import Browser, sync_playwright
from starlette.testclient import WebSocketDenialResponse
from starlette.websockets import WebSocketDisconnect
{% if cookiecutter.authentication == "jwt" %}
from {{ cookiecutter.package_name }}.auth import TOKEN_EXPIRED
{%- endif %}
from {{ cookiecutter.package_name }}.main import create_app
from {{ cookiecutter.package_name }}.rejections import (
    INSUFFICIENT_SCOPE,
    INVALID_TICKET,
    MISSING_TOKEN,
    ORIGIN_NOT_ALLOWED,
    Rejection,
{%- if cookiecutter.authentication == "jwt" %}
    close_code,
{%- endif %}
)
from {{ cookiecutter.package_name }}.settings import Settings

from cases import ADMIN_ECHO_ENDPOINTS, ECHO_ENDPOINTS
from credentials import SECOND_TOKEN, TOKEN, expiring_credential
from live_server import LiveServer

PROJECT = Path(__file__).resolve().parents[1]
COMMITTED_SCREENSHOT = PROJECT / "docs" / "browser-demo.png"
# Headless flags for a sandboxed machine with no network beyond loopback.
CHROMIUM_ARGS = [
    "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
    "--disable-background-networking", "--disable-component-update", "--disable-sync",
]  # fmt: skip
ECHO = ECHO_ENDPOINTS  # {strategy: path}, one per strategy this project has
ADMIN_ECHO = ADMIN_ECHO_ENDPOINTS  # the same, needing the "admin" scope
EXPIRING_TTL = 4  # seconds: long enough to connect first, short enough to wait for
ECHOED = ["open", "message hello", "close 1000 done"]
ECHOED_WITH_BEARER = ["open (protocol bearer)", "message hello", "close 1000 done"]
REFUSAL_LOG_LINE = re.compile(r"refused WebSocket (\S+) from \S+: (\w+)")


def find_chromium() -> str:
    for candidate in (os.environ.get("CHROMIUM"), "chromium", "chromium-browser", "google-chrome"):
        if candidate and (path := shutil.which(candidate)):
            return path
    message = "CHROMIUM NOT FOUND: the browser demo tests did NOT run (apt-get install chromium)"
    if os.environ.get("REQUIRE_CHROMIUM"):
        pytest.fail(message)
    pytest.skip(message)


@dataclass
class Visit:
    results: dict[str, dict[str, Any]]  # {strategy: {row: {"events": [...], "times": [...]}}}
    origin: dict[str, Any]  # the page's origin and whether WS_ALLOWED_ORIGINS lists it
    banner: str  # the text of the origin banner the page shows

    def events(self, strategy: str, row: str) -> list[str]:
        return self.results[strategy][row]["events"]


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    chromium = find_chromium()
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=chromium, args=CHROMIUM_ARGS)
        yield browser
        browser.close()


def visit(browser: Browser, url: str, screenshot: Path | None = None) -> Visit:
    page = browser.new_page(viewport={"width": 1200, "height": 800})
    try:
        page.goto(url)
        page.wait_for_function("window.demoDone === true", timeout=30_000)
        if screenshot is not None:
            page.screenshot(path=screenshot, full_page=True)
        return Visit(
            page.evaluate("window.demoResults"),
            page.evaluate("window.demoOrigin"),
            page.inner_text(".banner:not([hidden])"),
        )
    finally:
        page.close()


@dataclass
class Demo:
    page: Visit  # with a token lacking the admin scope, and an expiring one if any
    admin: Visit  # with a token granting the admin scope
    expires_at: float | None
    url: str
    log: str
    screenshot: Path


def screenshot_path(workdir: Path) -> Path:
    """A temporary file, or the committed screenshot when UPDATE_SCREENSHOT=1 asks for it."""
    if os.environ.get("UPDATE_SCREENSHOT") == "1":
        return COMMITTED_SCREENSHOT
    return workdir / "browser-demo.png"


@pytest.fixture(scope="module")
def demo(browser: Browser, tmp_path_factory: pytest.TempPathFactory) -> Demo:
    workdir = tmp_path_factory.mktemp("demo")
    # The page's own origin must be allowed, so the port is fixed before the start.
    origin = {"WS_ALLOWED_ORIGINS": "http://127.0.0.1:{port}"}
    server = LiveServer(workdir, launcher=True, env=origin, fixed_port=True)
    screenshot = screenshot_path(workdir)
    with server:
        expiring = expiring_credential(EXPIRING_TTL)  # minted now: the clock runs
        fragment = f"token={SECOND_TOKEN}" + (f"&expiring={expiring[0]}" if expiring else "")
        page = visit(browser, f"{server.http_url}/#{fragment}", screenshot)
        admin = visit(browser, f"{server.http_url}/#token={TOKEN}")
    server.assert_no_unexpected_errors()
    return Demo(page, admin, expiring and expiring[1], server.http_url, server.log, screenshot)


@pytest.fixture(scope="module")
def refuses_in_handshake() -> dict[str, int | None]:
    """{strategy: None if its endpoint refuses during the handshake, else how far its
    close codes sit above the HTTP status}, as a TestClient sees a missing credential.
    JavaScript sees the two deliveries very differently; the page must show each as
    it is, and Chromium must agree with what the server sends in-process."""
    found: dict[str, int | None] = {}
    with TestClient(create_app(Settings(_env_file=None))) as client:
        for strategy, path in ECHO.items():
            try:
                with client.websocket_connect(path) as websocket:
                    websocket.receive_text()
                    websocket.receive_text()
            except WebSocketDenialResponse:
                found[strategy] = None
            except WebSocketDisconnect as closed:
                found[strategy] = closed.code - MISSING_TOKEN.status
    return found


def refused(offset: int | None, rejection: Rejection, offered_bearer: bool = False) -> list[str]:
    """The events JavaScript sees for ``rejection``, as the contract says."""
    if offset is None:
        return ["error", "close 1006"]  # no open, no HTTP status, no reason
    opened = "open (protocol bearer)" if offered_bearer else "open"
    message = json.dumps({"error": rejection.code, "detail": rejection.message})
    return [opened, f"message {message}", f"close {rejection.status + offset} {rejection.code}"]


def test_page_says_its_origin_is_allowed(demo: Demo) -> None:
    assert demo.page.origin == {"origin": demo.url, "allowed": True}
    assert demo.page.banner.startswith(f"This page's origin, {demo.url}, is in WS_ALLOWED_ORIGINS")


@pytest.mark.parametrize("strategy", ECHO)
def test_no_credential_is_refused(demo: Demo, refuses_in_handshake: dict, strategy: str) -> None:
    expected = refused(refuses_in_handshake[strategy], MISSING_TOKEN)
    assert demo.page.events(strategy, "none") == expected


@pytest.mark.parametrize("strategy", ECHO)
def test_subprotocol_is_admitted_and_bearer_selected(demo: Demo, strategy: str) -> None:
    # Chromium fails a handshake whose offered protocols get no answer: this open
    # proves the server selected "bearer".
    assert demo.page.events(strategy, "subprotocol") == ECHOED_WITH_BEARER


@pytest.mark.parametrize("strategy", ECHO)
def test_ticket_admits_once(demo: Demo, refuses_in_handshake: dict, strategy: str) -> None:
    assert demo.page.events(strategy, "ticket") == ["POST /ws/tickets 201", *ECHOED]
    expected = refused(refuses_in_handshake[strategy], INVALID_TICKET)
    assert demo.page.events(strategy, "ticket_again") == expected


@pytest.mark.parametrize("strategy", ECHO)
def test_query_token_is_admitted(demo: Demo, strategy: str) -> None:
    assert demo.page.events(strategy, "query") == ECHOED


def test_no_credential_reaches_the_log(demo: Demo) -> None:
    assert SECOND_TOKEN not in demo.log
    assert TOKEN not in demo.log
    assert "token=[redacted]" in demo.log  # the query-string row's access log line


@pytest.mark.parametrize("strategy", ECHO)
def test_admin_route_needs_the_scope(demo: Demo, refuses_in_handshake: dict, strategy: str) -> None:
    expected = refused(refuses_in_handshake[strategy], INSUFFICIENT_SCOPE, offered_bearer=True)
    assert demo.page.events(strategy, "admin") == expected
    assert demo.admin.events(strategy, "admin") == ECHOED_WITH_BEARER


def test_the_server_log_says_what_javascript_could_not_see(demo: Demo) -> None:
    # Two visits: each refused the bare and the reused-ticket attempt; the first
    # also the admin route (no admin scope). Every refusal is one INFO line.
    expected: Counter[tuple[str, str]] = Counter()
    for path in ECHO.values():
        expected[path, MISSING_TOKEN.code] = expected[path, INVALID_TICKET.code] = 2
    for path in ADMIN_ECHO.values():
        expected[path, INSUFFICIENT_SCOPE.code] = 1
    assert Counter(REFUSAL_LOG_LINE.findall(demo.log)) == expected
{%- if cookiecutter.authentication == "jwt" %}


@pytest.mark.parametrize("strategy", ECHO)
def test_expiring_credential_closes_the_socket(demo: Demo, strategy: str) -> None:
    assert demo.expires_at is not None
    row = demo.page.results[strategy]["expiring"]
    closed = f"close {close_code(TOKEN_EXPIRED)} {TOKEN_EXPIRED.code}"
{%- if cookiecutter.rejection_strategy == "pre_accept" %}
    told: list[str] = []  # after accept, a close frame is all a refusal can be
{%- else %}
    reason = json.dumps({"error": TOKEN_EXPIRED.code, "detail": TOKEN_EXPIRED.message})
    told = [f"message {reason}"] if strategy == "accept_then_close" else []
{%- endif %}
    assert row["events"] == ["open (protocol bearer)", "message hello", *told, closed]
    closed_at = row["times"][-1] / 1000  # Date.now() in the page: the same clock
    assert demo.expires_at - 0.01 <= closed_at <= demo.expires_at + 1.0
{%- endif %}


def test_screenshot_was_taken(demo: Demo) -> None:
    assert set(demo.page.results) == set(ECHO)
    assert demo.screenshot.stat().st_size > 10_000


def test_page_explains_a_refused_origin(
    browser: Browser, tmp_path_factory: pytest.TempPathFactory, refuses_in_handshake: dict
) -> None:
    # A first run without .env: a credential but no WS_ALLOWED_ORIGINS, so the app
    # refuses its own page. The page must say why, and how to fix it.
    server = LiveServer(tmp_path_factory.mktemp("no-origins"), launcher=True)
    del server.env["WS_ALLOWED_ORIGINS"]
    with server:
        seen = visit(browser, f"{server.http_url}/#token={TOKEN}")
    server.assert_no_unexpected_errors()

    assert seen.origin == {"origin": server.http_url, "allowed": False}
    for words in ("refused: origin_not_allowed", server.http_url, "cp .env.example .env"):
        assert words in seen.banner
    for strategy, handshake in refuses_in_handshake.items():
        plain = refused(handshake, ORIGIN_NOT_ALLOWED)
        bearer = refused(handshake, ORIGIN_NOT_ALLOWED, offered_bearer=True)
        events = {row: seen.events(strategy, row) for row in seen.results[strategy]}
        assert events == {
            "none": plain,
            "subprotocol": bearer,
            "ticket": ["POST /ws/tickets 201", *plain],  # HTTP: no Origin check there
            "ticket_again": plain,  # refused at the Origin check: the ticket was never used
            "query": plain,
            "admin": bearer,
        }
