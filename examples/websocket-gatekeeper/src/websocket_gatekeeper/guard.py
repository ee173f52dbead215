"""The WebSocket guard: every WebSocket route is admitted through one pipeline.

A pure ASGI middleware around the whole app. It lets the router pick the route as
usual, and holds the handshake until the endpoint first touches the connection
(Starlette's ``websocket.accept()`` first receives ``websocket.connect``). At that
moment the route is known, so the guard asks the admission pipeline with that
route's requirements (``requirements.py``: ``@requires(...)``, ``@public``) and:

- admits: the endpoint runs with ``websocket.user`` / ``websocket.auth`` set;
- refuses: the refusal is delivered (one function per strategy) and the endpoint
  is stopped with ``Refused`` before it could send or read anything.

A route that declares nothing needs a valid credential, so a route added the plain
FastAPI way (``@app.websocket``, an ``APIRouter`` with a prefix, path parameters)
is guarded. Raise ``Rejected(rejection)`` anywhere in an endpoint to refuse later
in the conversation; the same delivery sends it. HTTP and lifespan traffic pass
through untouched. (``@app.middleware("http")`` could not do this: it never sees
WebSocket scopes.)

An admitted connection stays governed (``governance.py``): idle timeout, maximum
lifetime, messages per connection and revocation end
it through the same delivery.

The guard remembers each path's requirements (``KnownPaths``), so the next
handshake on a path is decided before routing: a refused client then costs no
routing, no endpoint and no exception through the app's stack. After routing,
the endpoint's requirements are checked again, so a remembered path can never
admit a client its route would refuse.
"""

import asyncio
import logging
from collections.abc import Awaitable
from contextlib import suppress

import anyio
from fastapi import FastAPI
from starlette.authentication import AuthCredentials, UnauthenticatedUser
from starlette.routing import BaseRoute, Host
from starlette.types import ASGIApp, Message, Receive, Scope, Send
from starlette.websockets import WebSocketDisconnect

from . import accept_then_close, metrics, pre_accept
from .admission import Admission, Admitted
from .clients import client_address
from .credentials import BEARER_SUBPROTOCOL
from .governance import Bucket, Governance, MessageRate, count_message
from .rejections import (
    IDLE_TIMEOUT,
    LIFETIME_EXCEEDED,
    NOT_FOUND,
    OPAQUE,
    TOO_MANY_MESSAGES,
    Rejection,
)
from .requirements import ACCEPT_THEN_CLOSE, PRE_ACCEPT, Requirements, requirements_of

logger = logging.getLogger(__name__)

# How each kind of route delivers a refusal; a route that declares nothing, and a
# path no route matches, use pre-accept: the cheapest, visible to any HTTP client.
DELIVERIES = {
    PRE_ACCEPT: pre_accept.deliver_refusal,
    ACCEPT_THEN_CLOSE: accept_then_close.deliver_refusal,
}
# A client that stops reading blocks every send once the buffers are full; a close
# after accept gives up after this long, and the server drops the connection when
# the app returns.
CLOSE_TIMEOUT = 1.0
# After accept, a close finds the client gone (OSError from the server,
# WebSocketDisconnect from Starlette) or the endpoint closed already (RuntimeError).
GONE = (OSError, RuntimeError, WebSocketDisconnect)
INTERNAL_ERROR = 1011
UNGOVERNED = Governance()  # for a guard given no limits: only what admission decided
# Paths are chosen by clients: the guard remembers this many, then starts over.
MAX_KNOWN_PATHS = 10_000


class Rejected(Exception):
    """Raise in a WebSocket endpoint to refuse the client, before or after accept."""

    def __init__(self, rejection: Rejection) -> None:
        super().__init__(rejection.code)
        self.rejection = rejection


class Refused(Exception):
    """Raised into an endpoint whose client was refused: nothing more may pass."""


class KnownPaths:
    """The requirements of the route the router picked for each path so far.

    A path once matched stays matched by the same route as routes are added after
    it. The guard checks the endpoint's requirements again after routing, so a
    remembered path never admits a client its route would refuse. Forgotten when
    the app's own list of routes changes length; never used when the app routes
    by ``Host`` (one path may then lead to different routes). Paths no route
    matches are not remembered: a route for them may be added at any time, on an
    included router too. Bounded: when full, it starts over.
    """

    __slots__ = ("_count", "_known", "_routes", "_usable")

    def __init__(self, routes: list[BaseRoute]) -> None:
        self._routes = routes  # the router's own list: routes added later show up
        self._count = -1
        self._usable = False
        self._known: dict[str, Requirements] = {}

    def lookup(self, path: str) -> Requirements | None:
        if len(self._routes) != self._count:
            self._count = len(self._routes)
            self._usable = not any(isinstance(route, Host) for route in self._routes)
            self._known.clear()
        return self._known.get(path) if self._usable else None

    def learn(self, path: str, requirements: Requirements) -> None:
        if len(self._known) >= MAX_KNOWN_PATHS:
            self._known.clear()
        self._known[path] = requirements


class WebSocketGuard:
    def __init__(
        self,
        app: ASGIApp,
        admission: Admission,
        governance: Governance = UNGOVERNED,
        routes: list[BaseRoute] | None = None,
    ) -> None:
        self.app = app
        self.admission = admission
        self.governance = governance
        # Without the router's routes, every handshake is decided after routing.
        self.known = None if routes is None else KnownPaths(routes)

    def __call__(self, scope: Scope, receive: Receive, send: Send) -> Awaitable[None]:
        # Not ``async``: it hands back the awaitable it picked, so no request pays
        # for one more coroutine (and a WebSocket holds no extra frame for its life).
        if scope["type"] != "websocket":
            return self.app(scope, receive, send)
        return GuardedConnection(self, scope, receive, send).serve(self.app)


def guard_websockets(
    app: FastAPI, admission: Admission, governance: Governance = UNGOVERNED
) -> None:
    """Put every WebSocket route of ``app`` behind the guard, and answer a path no
    route matches with a 404 instead of Starlette's bare 403 (a bare 403 tells a
    client it is not allowed when in fact it has a typo in the path)."""
    app.add_middleware(
        WebSocketGuard, admission=admission, governance=governance, routes=app.router.routes
    )
    http_not_found = app.router.default

    async def not_found(scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "websocket":
            raise Rejected(NOT_FOUND)
        await http_not_found(scope, receive, send)

    app.router.default = not_found


class GuardedConnection:
    """One WebSocket connection as the endpoint sees it: admitted on first use,
    then governed until it ends."""

    __slots__ = (
        "_accepted",
        "_counting",
        "_deadline",
        "_deadlines",
        "_guard",
        "_last_seen",
        "_rate",
        "_receive",
        "_refused",
        "_requirements",
        "_routed",
        "_send",
        "_started",
        "_stopped_by",
        "_strategy",
        "_task",
        "admitted",
        "ended",
        "scope",
    )

    def __init__(self, guard: WebSocketGuard, scope: Scope, receive: Receive, send: Send) -> None:
        self._guard = guard  # its admission, governance and known paths
        self.scope = scope
        self._receive = receive
        self._send = send
        self.admitted: Admitted | None = None
        self.ended = False
        self._refused = False
        self._accepted = False
        self._routed = False  # whether the endpoint's requirements were checked
        self._strategy = PRE_ACCEPT  # until the route says otherwise
        self._requirements: Requirements | None = None  # what admission was asked
        # stop() cancels this task (the endpoint's) when the connection must end.
        self._task: asyncio.Task[object] | None = None
        self._stopped_by: Rejection | None = None
        # The limits' deadlines on this loop (its clock is the connection's clock).
        self._deadlines = guard.governance.deadlines_on(asyncio.get_running_loop())
        self._deadline: Bucket | None = None  # where it waits there, while one is set
        self._started = self._last_seen = 0.0
        self._rate: MessageRate | int = 0  # messages counted so far (count_message)
        self._counting = False  # whether receive must look at messages: from accept on

    async def serve(self, app: ASGIApp) -> None:
        paths = self._guard.known
        known = None if paths is None else paths.lookup(self.scope["path"])
        self._task = asyncio.current_task()
        try:
            # Decided before routing, with the route's requirements from last time.
            if known is not None and not await self._admitted(known):
                return  # refused: told already
            try:
                await app(self.scope, self.receive, self.send)
            except asyncio.CancelledError:
                if self._stopped_by is None or not self._forget_cancellation():
                    raise  # not (only) ours: the server is shutting down
            else:
                if self._stopped_by is not None and not self._forget_cancellation():
                    raise asyncio.CancelledError  # swallowed by the endpoint, not only ours
            if self._stopped_by is not None:
                await self._refuse(self._stopped_by)
        except Rejected as exc:
            # Raised before the endpoint touched the connection: whoever is not
            # admissible hears the pipeline's refusal, not the route's reason.
            if (
                self.admitted is None
                and exc.rejection is not NOT_FOUND
                and not await self._admitted(requirements_of(self.scope))
            ):
                return
            await self._refuse(exc.rejection)
        except Refused:
            pass  # delivered already
        except WebSocketDisconnect:
            pass  # the client left; there is nobody to tell
        except Exception:
            if not self._accepted:
                raise  # the server answers 500 and logs it
            self._refused = True  # nothing may stop it now: it is closing
            # The traceback stays in the server log; the client learns only "internal error".
            logger.exception("WebSocket endpoint %s failed", self.scope["path"])
            await self._close_after_accept({"type": "websocket.close", "code": INTERNAL_ERROR})
        finally:
            self.ended = True
            await self._release()

    def stop(self, rejection: Rejection) -> bool:
        """End the connection with ``rejection`` (a limit, a revocation): the endpoint
        is cancelled and the refusal delivered the route's way. The first reason
        wins; False when the connection was ending already."""
        if self._stopped_by is not None or self._refused or self.ended:
            return False
        self._stopped_by = rejection
        task = self._task
        if task is not None and task is not asyncio.current_task():
            task.cancel()  # else: called from its own admission, which refuses (_admit)
        return True

    def _forget_cancellation(self) -> bool:
        """After stop(): take back its cancellation of the task (Python 3.11+ counts
        them); False when someone else cancelled the task too."""
        uncancel = getattr(self._task, "uncancel", None)
        return uncancel is None or uncancel() == 0

    # receive and send are not ``async``: once the route is checked, a message the
    # guard need not look at goes straight between the server and the endpoint.

    def receive(self) -> Awaitable[Message]:
        if not self._routed and not self._admitted_for_route():
            return self._receive_after_admission()
        if self._counting:
            return self._receive_governed()
        return self._receive()

    def send(self, message: Message) -> Awaitable[None]:
        if not self._routed and not self._admitted_for_route():
            return self._send_after_admission(message)
        if message["type"] == "websocket.accept":
            return self._send(self._accepting(message))
        return self._send(message)

    async def _receive_after_admission(self) -> Message:
        await self._check_route()
        return await self.receive()

    async def _send_after_admission(self, message: Message) -> None:
        await self._check_route()
        await self.send(message)

    async def _receive_governed(self) -> Message:
        message = await self._receive()
        if message["type"] == "websocket.receive" and self._count_message():
            await self._refuse(TOO_MANY_MESSAGES)
            raise Refused
        return message

    def _accepting(self, message: Message) -> Message:
        self._accepted = True
        self._counting = self._guard.governance.watches_messages
        admitted = self.admitted
        if admitted is not None and admitted.select_bearer and not message.get("subprotocol"):
            # The client sent its credential as "bearer.<base64url>" and also offered
            # "bearer": browsers fail a handshake whose offered protocols get no answer.
            return {**message, "subprotocol": BEARER_SUBPROTOCOL}
        return message

    def _count_message(self) -> bool:
        """Note a message from the client (idle) and count it against
        ``WS_MESSAGE_RATE_LIMIT``; True past the rate. Not ``async``: it runs for
        every message."""
        now = self._deadlines.loop.time()
        governance = self._guard.governance
        if governance.idle_seconds is not None:
            self._last_seen = now
        limits = governance.message_limits
        if limits is None or self.admitted is None:
            return False
        count = count_message(self._rate, limits, self._started, now)
        if count is None:
            return True
        self._rate = count
        return False

    def _admitted_for_route(self) -> bool:
        """The endpoint touches the connection for the first time: True when it was
        admitted before routing with exactly its route's requirements (the common
        case, decided without a coroutine)."""
        if self._refused or requirements_of(self.scope) is not self._requirements:
            return False
        self._routed = True
        return True

    async def _check_route(self) -> None:
        """The endpoint touches the connection for the first time: admit it with its
        route's requirements, unless it was admitted with exactly these already."""
        if self._refused:
            raise Refused
        self._routed = True
        requirements = requirements_of(self.scope)
        if requirements is self._requirements:
            return
        if self._guard.known is not None:
            self._guard.known.learn(self.scope["path"], requirements)
        if self.admitted is not None:
            await self._release()  # the routes changed since the path was learnt
        await self._admit(requirements)

    async def _admit(self, requirements: Requirements) -> None:
        if not await self._admitted(requirements):
            raise Refused

    async def _admitted(self, requirements: Requirements) -> bool:
        """Ask the pipeline; False when the client is refused (and told so)."""
        if self._refused:
            return False
        self._requirements = requirements
        self._strategy = requirements.strategy
        admission, governance = self._guard.admission, self._guard.governance
        outcome = await admission.admit(self.scope, requirements, self._strategy)
        if isinstance(outcome, Rejection):
            await self._refuse(outcome)
            return False
        self.admitted = outcome
        metrics.connection_opened()
        self._started = self._last_seen = self._deadlines.loop.time()
        if outcome.identity is None:
            self.scope["user"], self.scope["auth"] = UnauthenticatedUser(), AuthCredentials()
        else:
            self.scope["user"], self.scope["auth"] = outcome.identity.user, outcome.identity.auth
            governance.open(self, outcome.identity.user.identity, outcome.unleased)
            if self._stopped_by is not None:  # revoked while it was being admitted
                await self._refuse(self._stopped_by)
                return False
        self._arm()
        return True

    async def _release(self) -> None:
        """Give back what admission took, and stop governing the connection."""
        self._disarm()
        admitted, self.admitted = self.admitted, None
        if admitted is None:
            return
        metrics.connection_closed()
        if admitted.identity is not None:
            self._guard.governance.end(self, admitted.identity.user.identity)
        await self._guard.admission.release(admitted)

    def _next_limit(self) -> tuple[float, Rejection] | None:
        """The earliest moment a limit ends this connection, and which one."""
        limit = None
        governance = self._guard.governance
        lifetime = governance.lifetime_seconds
        if lifetime is not None:
            limit = (self._started + lifetime, LIFETIME_EXCEEDED)
        if governance.idle_seconds is not None:
            idle = self._last_seen + governance.idle_seconds
            if limit is None or idle < limit[0]:
                limit = (idle, IDLE_TIMEOUT)
        return limit

    def _arm(self) -> None:
        """Set the deadline of the earliest limit (again)."""
        self._disarm()
        limit = self._next_limit()
        if limit is not None and not self.ended:
            self._deadline = self._deadlines.add(self, limit[0])

    def _disarm(self) -> None:
        if self._deadline is not None:
            self._deadlines.discard(self, self._deadline)
            self._deadline = None

    def deadline_passed(self, now: float) -> None:
        """Called by ``Deadlines``. Messages since the deadline was set may have moved
        the idle limit later: then the deadline is set again, once, instead of once
        per message."""
        self._deadline = None
        limit = self._next_limit()
        if limit is None:
            return
        if limit[0] <= now:
            self.stop(limit[1])
        else:
            self._deadline = self._deadlines.add(self, limit[0])

    async def _refuse(self, rejection: Rejection) -> None:
        """Log and count a refusal once, then deliver it the route's way."""
        self._refused = True
        self._routed = False  # the endpoint's next touch raises Refused
        metrics.count_refusal(self._strategy, rejection.code)
        if self.admitted is None:
            if logger.isEnabledFor(logging.INFO):
                # The path only, never the query string: it may carry a credential.
                logger.info(
                    "refused WebSocket %s from %s: %s",
                    self.scope["path"],
                    client_address(self.scope),
                    rejection.code,
                )
            if self._guard.admission.opaque:
                rejection = OPAQUE
        else:
            logger.info(
                "closed WebSocket %s from %s as %s: %s",
                self.scope["path"],
                client_address(self.scope),
                self.admitted.name,
                rejection.code,
            )
        deliver_refusal = DELIVERIES[self._strategy]
        if not self._accepted:
            await deliver_refusal(self.scope, self._send, rejection, accepted=False)
            return
        with anyio.move_on_after(CLOSE_TIMEOUT), suppress(*GONE):
            await deliver_refusal(self.scope, self._send, rejection, accepted=True)

    async def _close_after_accept(self, message: Message) -> None:
        with anyio.move_on_after(CLOSE_TIMEOUT), suppress(*GONE):
            await self._send(message)
