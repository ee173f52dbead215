"""The demo page in a real headless Chromium against a live server: what JavaScript sees.

Needs a Chromium: $CHROMIUM, or chromium / chromium-browser / google-chrome on PATH
(Debian: apt-get install chromium). Without one the test is skipped with a loud
reason, or fails where REQUIRE_CHROMIUM is set (CI).
"""

import json
import os
import shutil
from pathlib import Path

import pytest

from {{ cookiecutter.package_name }}.paths import ECHO_ENDPOINTS

from cases import TOKEN
from live_server import LiveServer

PROJECT = Path(__file__).resolve().parents[1]
SCREENSHOT = PROJECT / "docs" / "browser-demo.png"
# Headless flags for a sandboxed machine with no network beyond loopback.
CHROMIUM_ARGS = [
    "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
    "--disable-background-networking", "--disable-component-update", "--disable-sync",
]  # fmt: skip


def find_chromium() -> str:
    for candidate in (os.environ.get("CHROMIUM"), "chromium", "chromium-browser", "google-chrome"):
        if candidate and (path := shutil.which(candidate)):
            return path
    message = "CHROMIUM NOT FOUND: the browser demo test did NOT run (apt-get install chromium)"
    if os.environ.get("REQUIRE_CHROMIUM"):
        pytest.fail(message)
    pytest.skip(message)


@pytest.fixture(scope="module")
def results(tmp_path_factory: pytest.TempPathFactory) -> dict[str, dict[str, list[str]]]:
    chromium = find_chromium()
    from playwright.sync_api import sync_playwright

    server = LiveServer(tmp_path_factory.mktemp("demo"), launcher=True)
    server.env["WS_ALLOWED_ORIGINS"] = server.http_url  # the page's own origin
    with server, sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=chromium, args=CHROMIUM_ARGS)
        page = browser.new_page(viewport={"width": 1100, "height": 560})
        page.goto(f"{server.http_url}/#token={TOKEN}")
        page.wait_for_function("window.demoDone === true", timeout=30_000)
        found = page.evaluate("window.demoResults")
        page.screenshot(path=SCREENSHOT, full_page=True)
        browser.close()
    server.assert_no_unexpected_errors()
    return found


def without_token_as_seen_by_javascript(strategy: str, events: list[str]) -> None:
    if strategy == "pre_accept":
        # The HTTP 401 never reaches JavaScript: no open, no status, code 1006.
        assert events == ["error", "close 1006"]
    else:
        assert events[0] == "open"
        assert json.loads(events[1].removeprefix("message "))["error"] == "missing_token"
        assert events[2:] == ["close 4401 missing_token"]


@pytest.mark.parametrize("strategy", ECHO_ENDPOINTS)
def test_refusal_as_javascript_sees_it(results: dict, strategy: str) -> None:
    without_token_as_seen_by_javascript(strategy, results[strategy]["without_token"])


@pytest.mark.parametrize("strategy", ECHO_ENDPOINTS)
def test_admitted_browser_echoes(results: dict, strategy: str) -> None:
    assert results[strategy]["with_token"] == ["open", "message hello", "close 1000 done"]


def test_screenshot_was_saved_into_the_docs(results: dict) -> None:
    assert set(results) == set(ECHO_ENDPOINTS)
    assert SCREENSHOT.stat().st_size > 10_000
