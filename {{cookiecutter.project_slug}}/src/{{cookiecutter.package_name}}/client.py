"""A WebSocket client that obeys this server's refusals (docs/clients.md).

Every way a connection attempt or a session ends falls in one class:

- **fatal**: HTTP 400/401/403/404/431, close 4400/4401/4403/4404/4431 and any
  code not listed here: retrying cannot help, so it stops and raises ``Refused``{% if cookiecutter.authentication == "jwt" %}
  (except ``token_expired``);
- **refresh, then retry**: ``token_expired`` (HTTP 401 or close 4401) when a
  ``token_provider`` is given: a new token, then a new attempt at once{% endif %};
- **back off**: HTTP 429/503 wait at least ``Retry-After``; close 4429/4503 carry
  no header, so they wait a jittered exponential back-off;
- **reconnect**: close 4408, 1001, 1006, 1011, 1012, 1013, 1014, other 5xx and
  network errors, after a jittered exponential delay.

Attempts in a row and the time spent retrying are bounded (``RetryPolicy``);
past either, ``GaveUp`` is raised. Every decision is logged at DEBUG.
{%- if cookiecutter.authentication == "jwt" %}
With a ``token_provider``, a JWT is also refreshed in band a little before its
``exp`` (``{"type": "auth.refresh", "token": ...}``), so the connection lives on.
{%- endif %}

    client = Client("ws://127.0.0.1:8000/ws/echo", token=TOKEN, channel="header")
    async for websocket in client.sessions():  # Refused / GaveUp when it stops
        try:
            await websocket.send("hello")
            print(await websocket.recv())
            await websocket.close()  # closed normally: the loop ends
        except ConnectionClosed:
            continue  # the client reads the close code: reconnect, back off or raise
"""

import asyncio
import base64
import inspect
import json
import logging
import random
import time
import urllib.error
import urllib.request
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping
from dataclasses import dataclass
from email.utils import parsedate_to_datetime
from enum import Enum
from typing import Literal
from urllib.parse import urlencode, urlsplit, urlunsplit

from websockets.asyncio.client import ClientConnection, connect
{%- if cookiecutter.authentication == "jwt" %}
from websockets.exceptions import ConnectionClosed, InvalidHandshake, InvalidStatus
{%- else %}
from websockets.exceptions import InvalidHandshake, InvalidStatus
{%- endif %}
from websockets.typing import Subprotocol

logger = logging.getLogger(__name__)

Channel = Literal["header", "subprotocol", "ticket", "query"]
CHANNELS: tuple[Channel, ...] = ("header", "subprotocol", "ticket", "query")
TokenProvider = Callable[[], str | Awaitable[str]]

NORMAL_CLOSURE = 1000
NO_CLOSE_FRAME = 1006  # what a dropped connection counts as
BACK_OFF_STATUSES = {429, 503}
RECONNECT_CODES = {1001, 1006, 1011, 1012, 1013, 1014, 4408}
{%- if cookiecutter.authentication == "jwt" %}
TOKEN_EXPIRED = "token_expired"  # noqa: S105 (a refusal code, not a secret)
{%- endif %}


class Action(Enum):
    DONE = "done"  # closed normally (1000)
    FATAL = "fatal"
{%- if cookiecutter.authentication == "jwt" %}
    REFRESH = "refresh"
{%- endif %}
    BACK_OFF = "back off"
    RECONNECT = "reconnect"


@dataclass(frozen=True)
class Outcome:
    """How one attempt or session ended, and what the client does about it."""

    action: Action
    status: int | None = None  # HTTP status of a refused handshake or ticket request
    close_code: int | None = None  # close code of a session that was open
    code: str = ""  # the server's machine code: body "code", or the close reason
    retry_after: float | None = None  # seconds, from an HTTP Retry-After header

    def __str__(self) -> str:  # as the `connect` command prints it
        if self.status is not None:
            return f"refused: {self.status} {self.code}".rstrip()
        if self.close_code is not None:
            return f"closed: {self.close_code} {self.code}".rstrip()
        return f"failed: {self.code}"


class Refused(Exception):
    """The server refused in a way retrying cannot fix (``outcome.action`` is FATAL)."""

    def __init__(self, outcome: Outcome) -> None:
        super().__init__(str(outcome))
        self.outcome = outcome


class GaveUp(Refused):
    """Retrying went on for ``RetryPolicy.max_attempts`` or ``max_seconds``; the last outcome."""


def classify(
    status: int | None = None,
    close_code: int | None = None,
    code: str = "",
    retry_after: float | None = None,
{%- if cookiecutter.authentication == "jwt" %}
    can_refresh: bool = False,
{%- endif %}
) -> Outcome:
    """The contract's outcome class for an HTTP status or a close code."""
    number = status if status is not None else close_code
    if number is None:
        action = Action.RECONNECT  # a network error
    elif number == NORMAL_CLOSURE:
        action = Action.DONE
{%- if cookiecutter.authentication == "jwt" %}
    elif code == TOKEN_EXPIRED and can_refresh:
        action = Action.REFRESH
{%- endif %}
    elif number in BACK_OFF_STATUSES or number - 4000 in BACK_OFF_STATUSES:
        action = Action.BACK_OFF
    elif number in RECONNECT_CODES or (status is not None and status >= 500):
        action = Action.RECONNECT
    else:  # 4xx, 44xx and every close code nobody documented: stop, never a storm
        action = Action.FATAL
    return Outcome(action, status, close_code, code, retry_after)


@dataclass(frozen=True)
class RetryPolicy:
    max_attempts: int = 10  # attempts in a row that end in anything but DONE
    max_seconds: float = 300.0  # time spent retrying in a row
    base_delay: float = 0.5  # the first back-off; it doubles per attempt
    max_delay: float = 30.0  # ... up to this (a longer Retry-After is still honoured)
    healthy_after: float = 30.0  # a session open this long starts the count afresh

    def delay(self, attempt: int, at_least: float = 0.0) -> float:
        """Half of the exponential step, plus up to as much again at random ("equal
        jitter"): clients refused together do not come back together."""
        step = min(self.max_delay, self.base_delay * 2 ** (attempt - 1))
        return max(at_least, step / 2 + random.uniform(0, step / 2))  # noqa: S311


{%- if cookiecutter.authentication == "jwt" %}


class Connection(ClientConnection):
    """A ``websockets`` connection that keeps the server's ``auth.refreshed`` answers
    out of the application's messages."""

    control_messages = False  # set while this client refreshes in band

    async def recv(self, decode: bool | None = None) -> str | bytes:  # type: ignore[override]
        while True:
            message = await super().recv(decode)
            if not (self.control_messages and is_refreshed(message)):
                return message


def is_refreshed(message: str | bytes) -> bool:
    if not isinstance(message, str) or not message.startswith("{") or "auth." not in message:
        return False  # the cheap test first: most messages end here
    try:
        parsed = json.loads(message)
    except ValueError:
        return False
    if isinstance(parsed, dict) and parsed.get("type") == "auth.refreshed":
        logger.debug("refreshed in band; the server allows %s s more", parsed.get("expires_in"))
        return True
    return False
{%- else %}


Connection = ClientConnection
{%- endif %}


class Client:
    def __init__(
        self,
        url: str,
        *,
        token: str | None = None,
        token_provider: TokenProvider | None = None,  # called for the first token{% if cookiecutter.authentication == "jwt" %} and new ones{% endif %}
        channel: Channel = "header",
        policy: RetryPolicy | None = None,
        ticket_url: str | None = None,  # default: POST /ws/tickets on the same host
        headers: Mapping[str, str] | None = None,  # more handshake headers, e.g. Origin
        open_timeout: float = 10.0,
    ) -> None:
        if channel not in CHANNELS:
            raise ValueError(f"channel must be one of {', '.join(CHANNELS)}")
        self.url = url
        self.token = token
        self.token_provider = token_provider
        self.channel = channel
        self.policy = policy or RetryPolicy()
        self.ticket_url = ticket_url or http_url(url, "/ws/tickets")
        self.headers = dict(headers or {})
        self.open_timeout = open_timeout

    async def sessions(self) -> AsyncIterator[Connection]:
        """Open connections until one ends normally, or raise ``Refused`` / ``GaveUp``.

        Each connection is closed when the loop asks for the next one. Closing it
        yourself (``await websocket.close()``) ends the loop; so does asking for the
        next one while it is still open (it is closed normally then).
        """
        if self.token is None and self.token_provider is not None:
            self.token = await self.new_token()
        attempt, started = 0, time.monotonic()
        while True:
            attempt += 1
            opened = await self.open()
            if isinstance(opened, Outcome):
                outcome = opened
            else:
                since = time.monotonic()
                async with opened:
{%- if cookiecutter.authentication == "jwt" %}
                    refreshing = self.refresh_in_band(opened)
                    try:
                        yield opened
                    finally:
                        if refreshing is not None:
                            refreshing.cancel()
{%- else %}
                    yield opened
{%- endif %}
                    if opened.close_code is None:
                        logger.debug("session over, closing normally")
                        return
                outcome = self.ended(opened.close_code, opened.close_reason)
                if time.monotonic() - since >= self.policy.healthy_after:
                    attempt, started = 1, time.monotonic()  # it worked for a while
            if outcome.action is Action.DONE:
                logger.debug("%s: done", outcome)
                return
            wait = self.decide(outcome, attempt, time.monotonic() - started)
{%- if cookiecutter.authentication == "jwt" %}
            if outcome.action is Action.REFRESH:
                self.token = await self.new_token()
{%- endif %}
            await asyncio.sleep(wait)

    def decide(self, outcome: Outcome, attempt: int, elapsed: float) -> float:
        """Seconds to wait before the next attempt; raises for a fatal outcome or past
        the bounds."""
        if outcome.action is Action.FATAL:
            logger.debug("%s: fatal, not retrying", outcome)
            raise Refused(outcome)
        at_least = (outcome.retry_after or 0.0) if outcome.action is Action.BACK_OFF else 0.0
        wait = self.policy.delay(attempt, at_least)
{%- if cookiecutter.authentication == "jwt" %}
        if outcome.action is Action.REFRESH:
            wait = 0.0  # a new token, then at once
{%- endif %}
        if attempt >= self.policy.max_attempts or elapsed + wait > self.policy.max_seconds:
            logger.debug("%s: giving up after %d attempts, %.1f s", outcome, attempt, elapsed)
            raise GaveUp(outcome)
        logger.debug(
            "%s: %s; attempt %d in %.2f s", outcome, outcome.action.value, attempt + 1, wait
        )
        return wait

    async def open(self) -> Connection | Outcome:
        """One attempt through the channel: the connection, or how it failed."""
        url, headers, subprotocols, token = self.url, dict(self.headers), None, self.token
        if token is None:
            pass  # no credential at all: the server says which one it wants
        elif self.channel == "header":
            headers["Authorization"] = f"Bearer {token}"
        elif self.channel == "subprotocol":
            encoded = base64.urlsafe_b64encode(token.encode()).rstrip(b"=").decode()
            subprotocols = [Subprotocol("bearer"), Subprotocol(f"bearer.{encoded}")]
        elif self.channel == "ticket":
            ticket = await asyncio.to_thread(self.fetch_ticket, token)
            if isinstance(ticket, Outcome):
                return ticket
            url = with_query(url, ticket=ticket)
        else:
            url = with_query(url, token=token)
        try:
            return await connect(
                url,
                additional_headers=headers,
                subprotocols=subprotocols,
                open_timeout=self.open_timeout,
                create_connection=Connection,
            )
        except InvalidStatus as exc:
            response = exc.response
            return self.refusal(response.status_code, response.body or b"", response.headers)
        except (OSError, asyncio.TimeoutError, InvalidHandshake) as exc:
            return classify(code=f"{type(exc).__name__}: {exc}")

    def fetch_ticket(self, token: str) -> str | Outcome:
        """``POST /ws/tickets`` with the token (run in a thread: urllib blocks)."""
        headers = {"Authorization": f"Bearer {token}"}
        request = urllib.request.Request(self.ticket_url, method="POST", headers=headers)  # noqa: S310
        try:
            with urllib.request.urlopen(request, timeout=self.open_timeout) as response:  # noqa: S310
                return str(json.load(response)["ticket"])
        except urllib.error.HTTPError as exc:
            return self.refusal(exc.code, exc.read(), exc.headers)
        except (OSError, ValueError, KeyError, TypeError) as exc:  # URLError is an OSError
            return classify(code=f"ticket: {type(exc).__name__}: {exc}")

    def refusal(self, status: int, body: bytes, headers: Mapping[str, str]) -> Outcome:
        """An HTTP refusal: its status, its body's ``code``, its ``Retry-After``."""
        try:
            code = str(json.loads(body).get("code", ""))
        except (ValueError, AttributeError):
            code = ""
        wait = retry_after(headers.get("Retry-After"))
{%- if cookiecutter.authentication == "jwt" %}
        return classify(status, None, code, wait, self.token_provider is not None)
{%- else %}
        return classify(status, None, code, wait)
{%- endif %}

    def ended(self, close_code: int | None, reason: str | None) -> Outcome:
        code, reason = close_code or NO_CLOSE_FRAME, reason or ""
{%- if cookiecutter.authentication == "jwt" %}
        return classify(None, code, reason, None, self.token_provider is not None)
{%- else %}
        return classify(None, code, reason)
{%- endif %}

    async def new_token(self) -> str:
        if self.token_provider is None:
            raise RuntimeError("no token_provider to ask")
        logger.debug("asking the token provider for a token")
        token = self.token_provider()
        return await token if inspect.isawaitable(token) else token
{%- if cookiecutter.authentication == "jwt" %}

    def refresh_in_band(self, websocket: Connection) -> "asyncio.Task[None] | None":
        """Refresh the token on this connection before its ``exp``, when there is a provider."""
        if self.token_provider is None or self.token is None or expires_at(self.token) is None:
            return None
        websocket.control_messages = True
        return asyncio.create_task(self._refresh_before_expiry(websocket))

    async def _refresh_before_expiry(self, websocket: Connection) -> None:
        while self.token is not None and (expiry := expires_at(self.token)) is not None:
            left = expiry - time.time()
            if left <= 0:
                return  # expired already: the server closes, and the client refreshes then
            # A little before exp: a third of what is left, and at most 30 s before.
            await asyncio.sleep(max(0.0, left - min(30.0, left / 3)))
            try:
                token = await self.new_token()
            except Exception:  # the provider's own failure: it surfaces at the reconnect
                logger.debug("the token provider failed; the server will close at exp")
                return
            if (expires_at(token) or 0) <= expiry:
                logger.debug("the token provider has no later token: the server will close")
                return
            self.token = token
            logger.debug("refreshing in band, %.1f s before exp", expiry - time.time())
            try:
                await websocket.send(json.dumps({"type": "auth.refresh", "token": token}))
            except ConnectionClosed:
                return  # how the session ended decides what comes next


def expires_at(token: str) -> float | None:
    """A JWT's ``exp``, read without verifying it (the server verifies); None without one."""
    try:
        payload = token.split(".")[1]
        claims = json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))
        return float(claims["exp"])
    except (IndexError, ValueError, KeyError, TypeError):
        return None
{%- endif %}


def retry_after(value: str | None) -> float | None:
    """Seconds from a ``Retry-After`` header: a number, or an HTTP date."""
    if not value:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        return max(0.0, parsedate_to_datetime(value).timestamp() - time.time())
    except (TypeError, ValueError):
        return None


def http_url(websocket_url: str, path: str) -> str:
    """The HTTP(S) URL of ``path`` on the WebSocket URL's host."""
    parts = urlsplit(websocket_url)
    scheme = "https" if parts.scheme == "wss" else "http"
    return urlunsplit((scheme, parts.netloc, path, "", ""))


def with_query(url: str, **params: str) -> str:
    parts = urlsplit(url)
    query = "&".join(filter(None, [parts.query, urlencode(params)]))
    return urlunsplit(parts._replace(query=query))
