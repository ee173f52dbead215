"""Below the app: a deadline for request heads and a bound on open connections.

uvicorn starts no timer until a response has been sent, so a client that sends
half a request head holds its socket (a file descriptor) for as long as it likes;
a thousand of them exhaust a process limited to 1,024 descriptors, and the kernel
then resets every new connection, ``/health`` included, without a log line. The
per-address rate limit never sees them: they never become a handshake. uvicorn's
``limit_concurrency`` does not help: it is checked only once a head is complete,
and not for WebSocket upgrades at all.

``GuardedH11Protocol`` is uvicorn's h11 protocol (the one the launcher uses) with:

- a deadline: a request (head, and body for plain HTTP) not complete within
  ``WS_HANDSHAKE_TIMEOUT_SECONDS`` of the connection (or of the previous response
  on a kept-alive connection) is closed;
- a bound: with ``WS_MAX_OPEN_CONNECTIONS`` open, a new connection closes the
  oldest one still sending its head (a client that sends its head at once is
  never the oldest), or, with none of those, is itself answered 503;
- one WARNING per interval saying what was shed, never one per socket.

Per connection that is one entry in an insertion-ordered dict, removed when the
head is complete; one timer per process walks the dict from its oldest entry.
"""

import asyncio
import logging
import resource
import time
from collections import Counter, OrderedDict
from typing import Any

import h11
from uvicorn.protocols.http.h11_impl import H11Protocol

from .settings import Settings, load_settings

logger = logging.getLogger(__name__)

SHED_LOG_INTERVAL = 10.0  # seconds: one WARNING at most per interval
MOST_SHED_ADDRESSES = 1000  # peers counted per interval for the WARNING
# Descriptors the process keeps for itself beyond client connections: the
# listening socket, the event loop, logs, Redis and key-server connections.
RESERVED_DESCRIPTORS = 64
# A request (head or body) is on its way, or the next one on a kept-alive connection.
RECEIVING = (h11.IDLE, h11.SEND_BODY)
BUSY = (
    b"HTTP/1.1 503 Service Unavailable\r\nRetry-After: 1\r\n"
    b"Content-Length: 0\r\nConnection: close\r\n\r\n"
)


def descriptor_limit() -> int:
    soft = resource.getrlimit(resource.RLIMIT_NOFILE)[0]
    return soft if soft != resource.RLIM_INFINITY else 1 << 20


def default_max_open_connections(limit: int) -> int:
    """What the process's descriptor limit leaves for client connections."""
    return max(1, limit - max(RESERVED_DESCRIPTORS, limit // 10))


class Guard:
    """This process's heads in progress, its bound, and what it has shed."""

    def __init__(self, head_timeout: float, max_open: int) -> None:
        self.head_timeout = head_timeout
        self.max_open = max_open
        # Connections still sending a request, oldest first -> when each must be done.
        self.pending: OrderedDict[GuardedH11Protocol, float] = OrderedDict()
        self.closing = 0  # shed, but not yet gone from uvicorn's set of connections
        self._checking: asyncio.TimerHandle | None = None
        self._timed_out = 0
        self._at_bound = 0
        self._peers: Counter[str] = Counter()
        self._reporting: asyncio.TimerHandle | None = None

    def expect_head(self, protocol: "GuardedH11Protocol") -> None:
        self.pending[protocol] = time.monotonic() + self.head_timeout
        if self._checking is None:
            self._schedule_check(protocol.loop)

    def keep_waiting(self, protocol: "GuardedH11Protocol") -> None:
        """Still receiving: keep the deadline it has, or give it one."""
        if protocol not in self.pending:
            self.expect_head(protocol)

    def head_done(self, protocol: "GuardedH11Protocol") -> None:
        self.pending.pop(protocol, None)

    def make_room(self) -> bool:
        """Close the oldest connection still sending its request; False if there is none."""
        if not self.pending:
            return False
        protocol, _ = self.pending.popitem(last=False)
        self.shed(protocol, timed_out=False)
        return True

    def shed(self, protocol: "GuardedH11Protocol", timed_out: bool) -> None:
        protocol.transport.close()
        protocol.shed = True
        self.closing += 1  # until its connection_lost: it no longer counts as open
        if protocol.busy:
            return  # counted when it was told to come back
        self.count(protocol, timed_out)

    def count(self, protocol: "GuardedH11Protocol", timed_out: bool) -> None:
        if timed_out:
            self._timed_out += 1
        else:
            self._at_bound += 1
        if protocol.client and (
            protocol.client[0] in self._peers or len(self._peers) < MOST_SHED_ADDRESSES
        ):
            self._peers[protocol.client[0]] += 1
        if self._reporting is None:  # the first of an interval is reported at once
            self.report()
            self._reporting = protocol.loop.call_later(SHED_LOG_INTERVAL, self._end_interval)

    def report(self) -> None:
        if not (self._timed_out or self._at_bound):
            return
        peer, count = self._peers.most_common(1)[0] if self._peers else ("unknown", 0)
        logger.warning(
            "shed %d connections whose request was not complete within %g s "
            "(WS_HANDSHAKE_TIMEOUT_SECONDS) and %d at the bound of %d open connections "
            "(WS_MAX_OPEN_CONNECTIONS); most from %s (%d)",
            self._timed_out,
            self.head_timeout,
            self._at_bound,
            self.max_open,
            peer,
            count,
        )
        self._timed_out = self._at_bound = 0
        self._peers.clear()

    def _end_interval(self) -> None:
        self._reporting = None
        if self._timed_out or self._at_bound:  # more were shed since the last line
            self.report()
            loop = asyncio.get_running_loop()
            self._reporting = loop.call_later(SHED_LOG_INTERVAL, self._end_interval)

    def _schedule_check(self, loop: asyncio.AbstractEventLoop) -> None:
        # A quarter of the deadline, at most a second: closed within deadline + slack.
        interval = min(1.0, self.head_timeout / 4)
        self._checking = loop.call_later(interval, self._close_overdue, loop)

    def _close_overdue(self, loop: asyncio.AbstractEventLoop) -> None:
        now = time.monotonic()
        while self.pending:
            protocol, deadline = next(iter(self.pending.items()))
            if deadline > now:
                break  # the rest came later: their deadlines are later too
            del self.pending[protocol]
            self.shed(protocol, timed_out=True)
        self._checking = None
        if self.pending:
            self._schedule_check(loop)


def configure(settings: Settings) -> Guard:
    """This process's deadline and bound, from the settings; SystemExit when the
    bound is more than the descriptor limit allows."""
    limit = descriptor_limit()
    room = default_max_open_connections(limit)
    max_open = settings.max_open_connections or room
    if max_open > room:
        raise SystemExit(
            f"WS_MAX_OPEN_CONNECTIONS={max_open} needs more file descriptors than this "
            f"process may open ({limit}, less {limit - room} for itself): raise `ulimit -n` "
            "or lower WS_MAX_OPEN_CONNECTIONS"
        )
    guard = GuardedH11Protocol.guard
    guard.head_timeout, guard.max_open = settings.handshake_timeout_seconds, max_open
    return guard


class GuardedH11Protocol(H11Protocol):
    """uvicorn's h11 protocol with a request deadline and a bound on open connections."""

    # Class-level defaults: a connection sets its own only when one changes, so
    # the common path adds no work to uvicorn's own per connection.
    guard = Guard(head_timeout=10, max_open=0)  # this process's; configure() sets it
    upgraded = False  # a WebSocket protocol took over
    busy = False  # over the bound: answered 503 (Busy below)
    shed = False  # closed by the guard

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        guard = self.guard
        if not guard.max_open:  # not configured by the launcher: plain `uvicorn --http`
            configure(load_settings())
        while len(self.connections) - guard.closing > guard.max_open:
            if guard.make_room():
                continue
            # Every connection is a request being answered or an open WebSocket: this
            # one is told to come back once it has sent something (clients read an
            # answer only after sending their request); it is evicted or timed out
            # like any connection still sending.
            self.busy = True
            guard.count(self, timed_out=False)
            transport.set_protocol(Busy(self))
            break
        guard.expect_head(self)

    def connection_lost(self, exc: Exception | None) -> None:
        self.guard.head_done(self)
        if self.shed:
            self.guard.closing -= 1
        super().connection_lost(exc)

    def handle_events(self) -> None:
        super().handle_events()
        if self.upgraded:
            return
        if self.conn.their_state in RECEIVING:
            self.guard.keep_waiting(self)
        else:
            self.guard.head_done(self)  # the whole request arrived

    def handle_websocket_upgrade(self, event: Any) -> None:
        self.upgraded = True  # the WebSocket protocol takes over from here
        self.guard.head_done(self)
        super().handle_websocket_upgrade(event)

    def on_response_complete(self) -> None:
        if not self.transport.is_closing():
            # Kept alive: the next request has the same deadline. (Before the call:
            # it handles a request already waiting, which may be complete.)
            self.guard.expect_head(self)
        super().on_response_complete()


class Busy(asyncio.Protocol):
    """A connection over the bound: its first bytes are answered 503, then the
    server's end is shut so the client reads the answer and closes (closing with
    its request unread would reset it before it could read)."""

    def __init__(self, protocol: GuardedH11Protocol) -> None:
        self.protocol = protocol  # its bookkeeping (deadline, connections) stays there
        self.answered = False

    def data_received(self, data: bytes) -> None:
        transport = self.protocol.transport
        if not self.answered and not transport.is_closing():
            self.answered = True
            transport.write(BUSY)
            transport.write_eof()

    def eof_received(self) -> None:
        return None  # the transport closes

    def connection_lost(self, exc: Exception | None) -> None:
        self.protocol.connection_lost(exc)
