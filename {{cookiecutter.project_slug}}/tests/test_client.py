"""The Python client (src/.../client.py) against a live uvicorn: every refusal lands in
its outcome class, and the client does what that class says."""

import asyncio
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from websockets.exceptions import ConnectionClosed

{% if cookiecutter.authentication == "jwt" %}from {{ cookiecutter.package_name }}.auth import mint_token
{% endif %}from {{ cookiecutter.package_name }}.client import (
    Action,
    Client,
    GaveUp,
    Outcome,
    Refused,
    RetryPolicy,
    classify,
)

from cases import ADMIN_ECHO_ENDPOINTS, ECHO_ENDPOINTS
{%- if cookiecutter.authentication == "jwt" %}
from credentials import SECOND_TOKEN, SECRET, TOKEN, WRONG_TOKEN, expiring_credential
{%- else %}
from credentials import SECOND_TOKEN, TOKEN, WRONG_TOKEN
{%- endif %}
from live_server import LiveServer

# Small delays keep the retrying tests quick; the bounds are what is tested.
QUICK = RetryPolicy(max_attempts=4, max_seconds=60, base_delay=0.2, max_delay=0.8)
STRATEGIES = list(ECHO_ENDPOINTS)
RATE_WINDOW = 2  # seconds: one handshake per window in the rate-limit test
{%- if cookiecutter.rejection_strategy == "pre_accept" %}
CLOSES_AFTER_ACCEPT: set[str] = set()  # strategies that refuse with a close frame
{%- else %}
CLOSES_AFTER_ACCEPT = {"accept_then_close"}  # strategies that refuse with a close frame
{%- endif %}
# A path no route matches is refused the way of the project's default strategy.
UNKNOWN_PATH_STRATEGY = STRATEGIES[0]


class RecordingClient(Client):
    """A Client that records each attempt and each decision (outcome, wait or None)."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.attempts = 0
        self.decisions: list[tuple[Outcome, float | None]] = []
        self.decided = asyncio.Event()  # set at the first decision

    async def open(self) -> Any:
        self.attempts += 1
        return await super().open()

    def decide(self, outcome: Outcome, attempt: int, elapsed: float) -> float:
        self.decided.set()
        try:
            wait = super().decide(outcome, attempt, elapsed)
        except Refused:
            self.decisions.append((outcome, None))
            raise
        self.decisions.append((outcome, wait))
        return wait


async def echo_once(client: Client, text: str = "hello") -> list[str]:
    """Send ``text`` on each session until one answers; close normally; the answers."""
    answers: list[str] = []
    async for websocket in client.sessions():
        try:
            await websocket.send(text)
            while (answer := await websocket.recv()) != text:
                pass  # a refusal after accept sends its JSON message before the close
            answers.append(answer)
            await websocket.close()
        except ConnectionClosed:
            continue
    return answers


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveServer]:
    with LiveServer(tmp_path_factory.mktemp("client"), app="client_app:app") as server:
        yield server


def test_the_outcome_table() -> None:
    fatal = [400, 401, 403, 404, 431]
    assert all(classify(status=s).action is Action.FATAL for s in fatal)
    assert all(classify(close_code=4000 + s).action is Action.FATAL for s in fatal)
    assert classify(close_code=1008).action is Action.FATAL  # undocumented: never a storm
    for status in (429, 503):
        assert classify(status=status, retry_after=3).action is Action.BACK_OFF
        assert classify(close_code=4000 + status).action is Action.BACK_OFF
    for code in (4408, 1001, 1006, 1011, 1012, 1013):
        assert classify(close_code=code).action is Action.RECONNECT
    assert classify(status=502).action is Action.RECONNECT
    assert classify().action is Action.RECONNECT  # a network error
    assert classify(close_code=1000).action is Action.DONE
{%- if cookiecutter.authentication == "jwt" %}
    assert classify(status=401, code="token_expired").action is Action.FATAL
    assert classify(status=401, code="token_expired", can_refresh=True).action is Action.REFRESH
    assert classify(close_code=4401, code="token_expired", can_refresh=True).action is (
        Action.REFRESH
    )
{%- endif %}


@pytest.mark.parametrize("channel", ["header", "subprotocol", "ticket", "query"])
@pytest.mark.parametrize("strategy", STRATEGIES)
async def test_every_channel_is_admitted(server: LiveServer, strategy: str, channel: str) -> None:
    client = RecordingClient(
        server.ws_url + ECHO_ENDPOINTS[strategy], token=TOKEN, channel=channel, policy=QUICK
    )
    assert await echo_once(client) == ["hello"]
    assert client.attempts == 1


def fatal_rows() -> list[Any]:
    evil = {"Origin": "https://evil.example"}
    return [
        pytest.param({"token": None}, "", 401, "missing_token", id="missing_token"),
        pytest.param({"token": WRONG_TOKEN}, "", 403, "invalid_token", id="invalid_token"),
        pytest.param(
            {"token": None}, "?ticket=never-issued-0123456789", 403, "invalid_ticket",
            id="invalid_ticket",
        ),
        pytest.param({"token": TOKEN, "headers": evil}, "", 403, "origin_not_allowed", id="origin"),
        pytest.param(
            {"token": TOKEN, "headers": {"X-Padding": "x" * 17_000}}, "", 431,
            "headers_too_large", id="headers_too_large",
        ),
    ]  # fmt: skip


@pytest.mark.parametrize(("options", "query", "status", "code"), fatal_rows())
@pytest.mark.parametrize("strategy", STRATEGIES)
async def test_fatal_refusals_make_one_attempt(
    server: LiveServer, strategy: str, options: dict[str, Any], query: str, status: int, code: str
) -> None:
    url = server.ws_url + ECHO_ENDPOINTS[strategy] + query
    client = RecordingClient(url, policy=QUICK, **options)
    with pytest.raises(Refused) as refused:
        await echo_once(client)
    assert_refused(refused.value, strategy, status, code)
    assert client.attempts == 1


@pytest.mark.parametrize("strategy", STRATEGIES)
async def test_missing_scope_is_fatal(server: LiveServer, strategy: str) -> None:
    url = server.ws_url + ADMIN_ECHO_ENDPOINTS[strategy]
    client = RecordingClient(url, token=SECOND_TOKEN, policy=QUICK)
    with pytest.raises(Refused) as refused:
        await echo_once(client)
    assert_refused(refused.value, strategy, 403, "insufficient_scope")
    assert client.attempts == 1


async def test_an_unknown_path_is_fatal(server: LiveServer) -> None:
    client = RecordingClient(server.ws_url + "/ws/nowhere", token=TOKEN, policy=QUICK)
    with pytest.raises(Refused) as refused:
        await echo_once(client)
    assert_refused(refused.value, UNKNOWN_PATH_STRATEGY, 404, "not_found")
    assert client.attempts == 1


def assert_refused(refused: Refused, strategy: str, status: int, code: str) -> None:
    assert type(refused) is Refused  # not GaveUp: no retry at all
    outcome = refused.outcome
    assert outcome.action is Action.FATAL
    assert outcome.code == code
    if strategy in CLOSES_AFTER_ACCEPT:
        assert (outcome.status, outcome.close_code) == (None, 4000 + status)
    else:
        assert (outcome.status, outcome.close_code) == (status, None)


@pytest.mark.parametrize("strategy", STRATEGIES)
async def test_rate_limited_waits_at_least_retry_after_or_the_back_off(
    tmp_path: Path, strategy: str
) -> None:
    env = {"WS_HANDSHAKE_RATE_LIMIT": f"1/{RATE_WINDOW}second"}
    with LiveServer(tmp_path, env=env) as server:
        url = server.ws_url + ECHO_ENDPOINTS[strategy]
        # Windows start at multiples of their length (Unix time): start with one, so
        # the next handshake surely falls in the same window as this one.
        await asyncio.sleep(RATE_WINDOW - time.time() % RATE_WINDOW)
        assert await echo_once(Client(url, token=TOKEN)) == ["hello"]  # the window's one
        policy = RetryPolicy(max_attempts=20, max_seconds=60, base_delay=0.2, max_delay=0.8)
        client = RecordingClient(url, token=TOKEN, policy=policy)
        started = time.monotonic()
        assert await echo_once(client) == ["hello"]
        took = time.monotonic() - started
    refusals = [(outcome, wait) for outcome, wait in client.decisions]
    assert refusals, "the second handshake within a second was not refused"
    assert all(outcome.action is Action.BACK_OFF for outcome, _ in refusals)
    assert all(outcome.code == "rate_limited" for outcome, _ in refusals)
    waits = [wait or 0.0 for _, wait in refusals]
    if strategy in CLOSES_AFTER_ACCEPT:  # 4429 carries no Retry-After: the back-off
        assert all(o.close_code == 4429 for o, _ in refusals)
        steps = [min(policy.max_delay, policy.base_delay * 2**n) for n in range(len(waits))]
        assert all(wait >= step / 2 for step, wait in zip(steps, waits, strict=True))
    else:
        assert all(o.status == 429 and o.retry_after is not None for o, _ in refusals)
        assert all(o.retry_after is not None and o.retry_after >= 1 for o, _ in refusals)
        assert all(w >= (o.retry_after or 0) for (o, _), w in zip(refusals, waits, strict=True))
    assert took >= sum(waits)


@pytest.mark.parametrize("strategy", STRATEGIES)
async def test_too_many_connections_backs_off_until_a_slot_frees(
    tmp_path: Path, strategy: str
) -> None:
    env = {"WS_MAX_CONNECTIONS_PER_IDENTITY": "1"}
    with LiveServer(tmp_path, env=env) as server:
        url = server.ws_url + ECHO_ENDPOINTS[strategy]
        holder = Client(url, token=TOKEN).sessions()
        held = await anext(holder)  # the identity's one slot
        client = RecordingClient(url, token=TOKEN, policy=QUICK)
        waiting = asyncio.create_task(echo_once(client))
        await asyncio.wait_for(client.decided.wait(), 30)  # refused while the slot is held
        await held.close()
        await holder.aclose()
        assert await asyncio.wait_for(waiting, 30) == ["hello"]
    assert all(outcome.action is Action.BACK_OFF for outcome, _ in client.decisions)
    assert all(outcome.code == "too_many_connections" for outcome, _ in client.decisions)


@pytest.mark.parametrize("code", [4408, 1001, 1011, 1012, 1013])
async def test_reconnectable_closes_reconnect_with_jitter(server: LiveServer, code: int) -> None:
    url = f"{server.ws_url}/ws/test/close/{code}?key=reconnect-{code}&times=2&reason=test"
    client = RecordingClient(url, policy=QUICK)
    assert await echo_once(client) == ["hello"]
    assert client.attempts == 3
    assert [(o.action, o.close_code) for o, _ in client.decisions] == [(Action.RECONNECT, code)] * 2


async def test_a_crashing_endpoint_reconnects_with_back_off_and_stops_at_the_bound(
    server: LiveServer,
) -> None:
    client = RecordingClient(server.ws_url + "/ws/test/crash", policy=QUICK)
    started = time.monotonic()
    with pytest.raises(GaveUp) as gave_up:
        await echo_once(client)
    took = time.monotonic() - started
    assert gave_up.value.outcome.close_code == 1011
    assert client.attempts == QUICK.max_attempts
    waits = [wait for _, wait in client.decisions[:-1]]
    assert all(outcome.action is Action.RECONNECT for outcome, _ in client.decisions)
    for attempt, wait in enumerate(waits, 1):  # equal jitter: half the step, at least
        step = min(QUICK.max_delay, QUICK.base_delay * 2 ** (attempt - 1))
        assert wait is not None
        assert step / 2 <= wait <= step
    assert took >= sum(w or 0 for w in waits)


async def test_back_off_on_4429_then_through(server: LiveServer) -> None:
    url = f"{server.ws_url}/ws/test/close/4429?key=busy&times=2&reason=too_many_messages"
    client = RecordingClient(url, policy=QUICK)
    assert await echo_once(client) == ["hello"]
    assert [o.action for o, _ in client.decisions] == [Action.BACK_OFF] * 2


async def test_attempts_are_bounded_for_an_unreachable_server(tmp_path: Path) -> None:
    with LiveServer(tmp_path) as server:
        url = server.ws_url + ECHO_ENDPOINTS[STRATEGIES[0]]
    # The server is gone: every attempt is a network error.
    client = RecordingClient(url, token=TOKEN, policy=QUICK)
    with pytest.raises(GaveUp) as gave_up:
        await echo_once(client)
    assert gave_up.value.outcome.action is Action.RECONNECT
    assert client.attempts == QUICK.max_attempts


async def test_time_spent_retrying_is_bounded(server: LiveServer) -> None:
    url = f"{server.ws_url}/ws/test/close/1013?key=slow&reason=try_again_later"
    policy = RetryPolicy(max_attempts=100, max_seconds=1.0, base_delay=0.2, max_delay=0.4)
    client = RecordingClient(url, policy=policy)
    started = time.monotonic()
    with pytest.raises(GaveUp):
        await echo_once(client)
    assert time.monotonic() - started < policy.max_seconds + 5  # the bound, plus slack
    assert 2 <= client.attempts < 100


async def test_an_async_token_provider_gives_the_first_token(server: LiveServer) -> None:
    async def provide() -> str:
        return TOKEN

    url = server.ws_url + ECHO_ENDPOINTS[STRATEGIES[0]]
    assert await echo_once(Client(url, token_provider=provide)) == ["hello"]
{%- if cookiecutter.authentication == "jwt" %}


@pytest.mark.parametrize("strategy", STRATEGIES)
async def test_token_expired_calls_the_provider_once_and_reconnects(
    server: LiveServer, strategy: str
) -> None:
    expired = mint_token(SECRET, "alice", -60)
    calls = []

    def provide() -> str:
        calls.append(time.monotonic())
        return TOKEN

    url = server.ws_url + ECHO_ENDPOINTS[strategy]
    client = RecordingClient(url, token=expired, token_provider=provide, policy=QUICK)
    assert await echo_once(client) == ["hello"]
    assert len(calls) == 1
    assert client.attempts == 2
    [(outcome, wait)] = client.decisions
    assert (outcome.action, outcome.code, wait) == (Action.REFRESH, "token_expired", 0.0)


@pytest.mark.parametrize("strategy", STRATEGIES)
async def test_token_expired_without_a_provider_is_fatal(server: LiveServer, strategy: str) -> None:
    expired = mint_token(SECRET, "alice", -60)
    client = RecordingClient(server.ws_url + ECHO_ENDPOINTS[strategy], token=expired)
    with pytest.raises(Refused) as refused:
        await echo_once(client)
    assert_refused(refused.value, strategy, 401, "token_expired")
    assert client.attempts == 1


@pytest.mark.parametrize("strategy", STRATEGIES)
async def test_in_band_refresh_keeps_the_connection_past_exp(
    server: LiveServer, strategy: str
) -> None:
    """A 3-second token, refreshed in band before exp: the same connection echoes at
    5 s, and the application never sees the server's auth.refreshed answer."""
    short = expiring_credential(3)
    assert short is not None
    provided = []

    def provide() -> str:
        fresh = expiring_credential(60)
        assert fresh is not None
        provided.append(fresh[0])
        return fresh[0]

    url = server.ws_url + ECHO_ENDPOINTS[strategy]
    client = RecordingClient(url, token=short[0], token_provider=provide, policy=QUICK)
    received: list[str] = []
    async for websocket in client.sessions():
        await asyncio.sleep(max(0.0, short[1] - time.time() + 2))  # 2 s past the first exp
        await websocket.send("still here")
        received.append(str(await asyncio.wait_for(websocket.recv(), 5)))
        await websocket.close()
    assert received == ["still here"]
    assert client.attempts == 1
    assert len(provided) == 1
{%- endif %}
