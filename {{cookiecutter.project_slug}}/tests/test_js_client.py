"""The JavaScript client (GET /ws-client.js) in a real headless Chromium against a live
server: it reconnects, stops, {% if cookiecutter.authentication == "jwt" %}refreshes, {% endif %}backs off and gives up as docs/clients.md says,
with timestamps taken in the page.

Needs a Chromium: $CHROMIUM, or chromium / chromium-browser / google-chrome on PATH.
Without one the tests are skipped with a loud reason, or fail where REQUIRE_CHROMIUM
is set (CI). No browser is downloaded.
"""

import os
import shutil
import urllib.error
import urllib.request
from collections.abc import Iterator
from typing import Any

import pytest
from playwright.sync_api import Page, sync_playwright
{%- if cookiecutter.authentication == "jwt" and cookiecutter.rejection_strategy != "pre_accept" %}

from {{ cookiecutter.package_name }}.auth import mint_token
{%- endif %}

{% if cookiecutter.authentication == "jwt" %}from cases import ECHO_ENDPOINTS
from credentials import {% if cookiecutter.rejection_strategy != "pre_accept" %}SECRET, {% endif %}expiring_credential
{% endif %}from live_server import LiveServer

# Headless flags for a sandboxed machine with no network beyond loopback.
CHROMIUM_ARGS = [
    "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
    "--disable-background-networking", "--disable-component-update", "--disable-sync",
]  # fmt: skip
QUICK = {"baseDelay": 0.2, "maxDelay": 0.8, "maxAttempts": 5, "maxUnopened": 2}
TIMER_SLACK_MS = 5  # page timers and the clock used to measure them round differently

# Runs in the page: connect with the module, send "hello" on each open (after
# sendAfter ms), close once it is echoed, and return every event with its time
# (ms since the start).
SCENARIO = """
async ({ url, options, refreshToken, settle, sendAfter }) => {
  const { connect } = await import("/ws-client.js");
  const t0 = performance.now();
  const at = () => performance.now() - t0;
  const events = [];
  return await new Promise((resolve) => {
    const client = connect(url, {
      ...options,
      ...(refreshToken ? { refresh: async () => {
        events.push({ at: at(), event: "refresh" });
        return refreshToken;
      } } : {}),
      onOpen: (ws) => {
        events.push({ at: at(), event: "open" });
        setTimeout(() => ws.send("hello"), sendAfter);
      },
      onMessage: (message) => {
        events.push({ at: at(), event: "message", data: message.data });
        if (message.data === "hello") client.close();
      },
      onClose: (o) => events.push({
        at: at(), event: "close", code: o.closeCode, reason: o.code, action: o.action,
        delay: o.delay,
      }),
      onStop: (o) => {
        events.push({ at: at(), event: "stop", why: o.why, action: o.action });
        setTimeout(() => resolve(events), settle);  // nothing may happen after a stop
      },
    });
  });
}
"""


def find_chromium() -> str:
    for candidate in (os.environ.get("CHROMIUM"), "chromium", "chromium-browser", "google-chrome"):
        if candidate and (path := shutil.which(candidate)):
            return path
    message = "CHROMIUM NOT FOUND: the JavaScript client tests did NOT run (apt install chromium)"
    if os.environ.get("REQUIRE_CHROMIUM"):
        pytest.fail(message)
    pytest.skip(message)


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveServer]:
    origin = {"WS_ALLOWED_ORIGINS": "http://127.0.0.1:{port}"}  # the page's own origin
    workdir = tmp_path_factory.mktemp("js-client")
    with LiveServer(workdir, app="client_app:app", env=origin, fixed_port=True) as server:
        yield server


@pytest.fixture(scope="module")
def page(server: LiveServer) -> Iterator[Page]:
    chromium = find_chromium()
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=chromium, args=CHROMIUM_ARGS)
        page = browser.new_page()
        page.goto(server.http_url + "/health")  # any page of the app's origin
        yield page
        browser.close()


def run(page: Page, url: str, **options: Any) -> list[dict[str, Any]]:
    refresh_token = options.pop("refresh_token", None)
    send_after = options.pop("send_after", 0)
    argument = {
        "url": url,
        "options": {**QUICK, **options},
        "refreshToken": refresh_token,
        "settle": 1000,
        "sendAfter": send_after,
    }
    return page.evaluate(SCENARIO, argument)


def names(events: list[dict[str, Any]]) -> list[str]:
    keys = ("event", "code", "reason", "action", "why", "data")
    return [" ".join(str(e[k]) for k in keys if e.get(k) not in (None, "")) for e in events]


def test_the_module_is_served_as_javascript(server: LiveServer) -> None:
    with urllib.request.urlopen(server.http_url + "/ws-client.js", timeout=10) as response:  # noqa: S310
        assert response.headers["content-type"] == "text/javascript; charset=utf-8"
        assert response.headers["cache-control"] == "no-cache"
        etag = response.headers["etag"]
        assert b"export function connect" in response.read()
    again = {"If-None-Match": etag}
    request = urllib.request.Request(server.http_url + "/ws-client.js", headers=again)  # noqa: S310
    with pytest.raises(urllib.error.HTTPError) as not_modified:
        urllib.request.urlopen(request, timeout=10)  # noqa: S310
    assert not_modified.value.code == 304


def test_it_reconnects_after_4408(page: Page) -> None:
    events = run(page, "/ws/test/close/4408?key=js-4408&times=1&reason=idle_timeout")
    assert names(events) == [
        "open",
        "close 4408 idle_timeout reconnect",
        "open",
        "message hello",
        "close 1000 done",
        "stop done closed by the page",
    ]
    closed, reopened = events[1], events[2]
    assert reopened["at"] - closed["at"] >= closed["delay"] * 1000 - TIMER_SLACK_MS
    assert QUICK["baseDelay"] / 2 <= closed["delay"] <= QUICK["baseDelay"]


def test_it_stops_after_4403(page: Page) -> None:
    events = run(page, "/ws/test/close/4403?key=js-4403&reason=revoked")
    assert names(events) == ["open", "close 4403 revoked fatal", "stop fatal fatal"]


def test_it_backs_off_after_4429(page: Page) -> None:
    events = run(page, "/ws/test/close/4429?key=js-4429&times=2&reason=too_many_messages")
    assert names(events) == [
        "open",
        "close 4429 too_many_messages back off",
        "open",
        "close 4429 too_many_messages back off",
        "open",
        "message hello",
        "close 1000 done",
        "stop done closed by the page",
    ]
    for attempt, (closed, reopened) in enumerate([(events[1], events[2]), (events[3], events[4])]):
        step = min(QUICK["maxDelay"], QUICK["baseDelay"] * 2**attempt)
        assert step / 2 <= closed["delay"] <= step  # exponential, with jitter
        assert reopened["at"] - closed["at"] >= closed["delay"] * 1000 - TIMER_SLACK_MS


def test_1006_before_open_is_retried_a_few_times_then_stops(page: Page) -> None:
    """A refused handshake and an unreachable server look the same to a page."""
    events = run(page, "ws://127.0.0.1:1/ws/nowhere")
    unopened = ["close 1006 unopened"] * (QUICK["maxUnopened"] + 1)
    assert names(events) == [*unopened, "stop unopened giving up"]
{%- if cookiecutter.authentication == "jwt" %}


def test_it_refreshes_on_token_expired(page: Page) -> None:
    url = "/ws/test/close/4401?key=js-expired&times=1&reason=token_expired"
    # The query channel: the route is public, the token only has to travel.
    events = run(page, url, refresh_token="a-new-token", channel="query")
    assert names(events) == [
        "open",
        "close 4401 token_expired refresh",
        "refresh",
        "open",
        "message hello",
        "close 1000 done",
        "stop done closed by the page",
    ]
    assert events[1]["delay"] == 0


def test_token_expired_without_a_refresh_hook_is_fatal(page: Page) -> None:
    events = run(page, "/ws/test/close/4401?key=js-expired-no-hook&reason=token_expired")
    assert names(events) == ["open", "close 4401 token_expired fatal", "stop fatal fatal"]


@pytest.mark.parametrize("strategy", list(ECHO_ENDPOINTS))
def test_it_refreshes_in_band_before_exp(page: Page, strategy: str) -> None:
    """A 3-second token refreshed in band: the same socket still echoes at 5 s."""
    short, later = expiring_credential(3), expiring_credential(60)
    assert short is not None
    assert later is not None
    events = run(
        page, ECHO_ENDPOINTS[strategy], token=short[0], refresh_token=later[0], send_after=5000
    )
    assert names(events) == [
        "open",
        "refresh",
        "message hello",
        "close 1000 done",
        "stop done closed by the page",
    ]
    assert events[1]["at"] < events[2]["at"] - 2000  # refreshed well before the message
{%- if cookiecutter.rejection_strategy != "pre_accept" %}


def test_it_refreshes_when_the_server_refuses_an_expired_token(page: Page) -> None:
    """A real refusal after accept: the JSON message, close 4401 token_expired, then
    the refresh hook's token is admitted."""
    expired, fresh = mint_token(SECRET, "alice", -60), expiring_credential(60)
    assert fresh is not None
    url = ECHO_ENDPOINTS["accept_then_close"]
    events = run(page, url, token=expired, refresh_token=fresh[0])
    assert [name.split(" ")[0] for name in names(events)] == [
        "open", "message", "close", "refresh", "open", "message", "close", "stop",
    ]  # fmt: skip
    assert '"error": "token_expired"' in events[1]["data"]
    assert names(events)[2:] == [
        "close 4401 token_expired refresh",
        "refresh",
        "open",
        "message hello",
        "close 1000 done",
        "stop done closed by the page",
    ]
{%- endif %}
{%- endif %}
