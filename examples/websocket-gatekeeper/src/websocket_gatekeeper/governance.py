"""Governing admitted connections: what the guard enforces after the handshake.

- Idle timeout and maximum lifetime (``WS_IDLE_TIMEOUT_SECONDS``,
  ``WS_MAX_CONNECTION_SECONDS``): close ``4408``. Each connection has one
  deadline for its earliest limit, kept in
  ``Deadlines``: one loop timer per process, not a task or a timer per connection.
  A message only notes the time; a deadline that comes early because messages
  came meanwhile is set again.
- Messages per connection (``WS_MESSAGE_RATE_LIMIT``): close ``4429``.
- Revocation: ``Revocations`` tells this module which identity was revoked, and
  every live connection of it here is closed with ``4403 revoked``.
- Caps that converge: a connection admitted while the store was down holds no
  lease; one loop per process takes the missing leases (or closes the connection
  ``4429 too_many_connections`` when its identity is over the cap by then) and
  releases leases whose release failed, once a second, as soon as the store answers.

The guard (``guard.py``) calls in here; the refusals are delivered by the route's
strategy like every other refusal.
"""

import asyncio
import contextlib
import heapq
import logging
import weakref
from collections.abc import Iterable
from typing import TYPE_CHECKING, NamedTuple, Protocol

from limits import RateLimitItem

from .rejections import REVOKED, TOO_MANY_CONNECTIONS, Rejection
from .store import StoreUnavailable

if TYPE_CHECKING:
    from .admission import Admission, Admitted
    from .revocations import Revocations
    from .settings import Settings

logger = logging.getLogger(__name__)

CONVERGE_SECONDS = 1.0  # how often missing leases are taken and failed releases retried
RESOLUTION = 0.1  # seconds: a deadline is met at most twice this late, never early


class Governed(Protocol):
    """What this module needs of a live connection (``guard.GuardedConnection``)."""

    admitted: "Admitted | None"
    ended: bool

    def stop(self, rejection: Rejection) -> bool: ...


class Timed(Protocol):
    """What ``Deadlines`` calls when a connection's deadline has come."""

    def deadline_passed(self, now: float) -> None: ...


class Bucket(set[Timed]):
    """The connections whose deadline falls in one slot. ``Deadlines.add`` hands it
    back for ``discard``: a connection keeps a reference to a shared object, not
    a number of its own."""

    __slots__ = ("slot",)

    def __init__(self, slot: int) -> None:
        super().__init__()
        self.slot = slot


class Deadlines:
    """The moments live connections must be looked at again, on one event loop.

    Connections are grouped by the slot of ``RESOLUTION`` seconds their deadline
    falls in, and one loop timer fires for the earliest slot. Setting or clearing
    a deadline is a dict lookup and a set operation: a timer handle per connection
    would cost a heap entry, a context copy and a cancel each, and its memory for
    as long as the connection lives.
    """

    __slots__ = ("_buckets", "_fired", "_handle", "_scheduled", "_slots", "loop")

    def __init__(self, loop: asyncio.AbstractEventLoop) -> None:
        self.loop = loop
        self._buckets: dict[int, Bucket] = {}
        self._slots: list[int] = []  # a heap of the buckets' slots (some emptied since)
        self._handle: asyncio.TimerHandle | None = None
        self._scheduled = 0  # the slot the handle fires for
        self._fired = 0  # every slot up to this one has fired

    def add(self, connection: Timed, when: float) -> Bucket:
        """Call ``connection.deadline_passed`` at ``when`` (loop time) or a little
        later; returns the bucket to ``discard`` it from."""
        slot = max(int(when / RESOLUTION) + 1, self._fired + 1)
        bucket = self._buckets.get(slot)
        if bucket is None:
            bucket = self._buckets[slot] = Bucket(slot)
            heapq.heappush(self._slots, slot)
            if self._handle is None or slot < self._scheduled:
                self._schedule(slot)
        bucket.add(connection)
        return bucket

    def discard(self, connection: Timed, bucket: Bucket) -> None:
        bucket.discard(connection)
        if bucket or self._buckets.get(bucket.slot) is not bucket:
            return  # others wait in it, or its slot has fired
        del self._buckets[bucket.slot]
        if not self._buckets:  # nothing waits: no timer either
            self._slots.clear()
            if self._handle is not None:
                self._handle.cancel()
                self._handle = None
        elif len(self._slots) > 2 * len(self._buckets) + 64:  # mostly emptied slots
            self._slots = sorted(self._buckets)

    def __len__(self) -> int:
        """How many connections wait for their deadline."""
        return sum(map(len, self._buckets.values()))

    def _schedule(self, slot: int) -> None:
        if self._handle is not None:
            self._handle.cancel()
        self._scheduled = slot
        self._handle = self.loop.call_at(slot * RESOLUTION, self._fire)

    def _fire(self) -> None:
        self._handle = None
        clock = self.loop.time()
        # The loop may run a timer a hair early: the slot it was set for has come.
        self._fired = due = max(self._scheduled, int(clock / RESOLUTION))
        slots, passed = self._slots, []
        while slots and slots[0] <= due:
            bucket = self._buckets.pop(heapq.heappop(slots), None)
            if bucket:
                passed.extend(bucket)
        while slots and slots[0] not in self._buckets:
            heapq.heappop(slots)
        if slots:
            self._schedule(slots[0])
        now = max(clock, due * RESOLUTION)
        for connection in passed:
            connection.deadline_passed(now)  # sets its next deadline, if any, after this slot


class MessageLimits(NamedTuple):
    """``WS_MESSAGE_RATE_LIMIT``, read once per process for every ``MessageRate``."""

    windows: tuple[tuple[int, float], ...]  # (amount, window in seconds)
    fewest: int  # the smallest amount
    shortest: float  # the shortest window

    @classmethod
    def of(cls, windows: tuple[tuple[int, float], ...]) -> "MessageLimits | None":
        if not windows:
            return None
        return cls(windows, min(amount for amount, _ in windows), min(s for _, s in windows))


def message_limits_of(limits: Iterable[RateLimitItem]) -> MessageLimits | None:
    return MessageLimits.of(tuple((item.amount, float(item.get_expiry())) for item in limits))


def count_message(
    count: "MessageRate | int", limits: MessageLimits, start: float, now: float
) -> "MessageRate | int | None":
    """Count one message of a connection admitted at ``start`` that has counted
    ``count`` so far: returns the new count, or None when a limit refuses it.

    Fewer messages than the smallest limit before its shortest window ends are
    certainly admitted, so they are counted in an int: a connection that only
    listens or says little never needs a ``MessageRate``.
    """
    if isinstance(count, int):
        if count < limits.fewest and now < start + limits.shortest:
            return count + 1
        count = MessageRate(limits, start, count)
    return None if count.exceeded(now) else count


class MessageRate:
    """``limits``' sliding-window counter for one connection, its windows counted
    from the connection's start: a limit of N per window admits a message while
    (the previous window's count x the share of it still inside the sliding
    window) + this window's count < N.

    Each time the windows are counted, it works out how many more messages are
    certainly admitted before the first of them ends (the previous window's share
    is at most all of it); those take the short way, counted in one number that is
    added to every window when the long way next runs.
    """

    __slots__ = ("_counts", "_free", "_limits", "_pending", "_start", "_until")

    def __init__(self, limits: MessageLimits, start: float, counted: int = 0) -> None:
        """Windows counted from ``start``; ``counted`` messages were admitted since,
        all in its first window (``count_message``)."""
        self._limits = limits.windows
        self._start = start
        # Per limit: window number, previous window's count, this window's count.
        self._counts: list[float] = [0, 0, 0] * len(limits.windows)
        self._until = start  # when the short way ends: the first message counts the windows
        self._free = 0  # messages certainly admitted until then
        self._pending = counted  # messages admitted the short way, not yet in the counts

    def exceeded(self, now: float) -> bool:
        """Count one message; True when a limit refuses it."""
        if self._free and now < self._until:
            self._free -= 1
            self._pending += 1
            return False
        return self._counted(now)

    def _counted(self, now: float) -> bool:
        counts, pending = self._counts, self._pending
        self._pending = 0
        elapsed = now - self._start
        until, free = float("inf"), float("inf")
        slot = 0
        for amount, seconds in self._limits:
            current = counts[slot + 2] + pending  # the short way's messages were all in it
            window = elapsed // seconds
            if counts[slot] != window:
                counts[slot + 1] = current if counts[slot] == window - 1 else 0
                counts[slot], current = window, 0
            share = 1 - (elapsed - window * seconds) / seconds
            if counts[slot + 1] * share + current >= amount:
                # Refused: the guard closes the connection, so no count is needed again.
                self._free = 0
                return True
            counts[slot + 2] = current + 1
            until = min(until, (window + 1) * seconds)
            free = min(free, amount - counts[slot + 1] - current - 1)
            slot += 3
        self._until, self._free = self._start + until, max(0, int(free))
        return False


class Governance:
    """The limits every admitted connection of this process lives under."""

    def __init__(
        self,
        idle_seconds: float | None = None,
        lifetime_seconds: float | None = None,
        message_limits: tuple[RateLimitItem, ...] = (),
    ) -> None:
        self.idle_seconds = idle_seconds
        self.lifetime_seconds = lifetime_seconds
        self.message_limits = message_limits_of(message_limits)  # for MessageRate
        # Whether a message from the client needs a look at all (idle, rate).
        self.watches_messages = idle_seconds is not None or self.message_limits is not None
        # identity -> its connections here (a dict as an ordered set: the smaller of
        # the two once an identity holds many connections)
        self._live: dict[str, dict[Governed, None]] = {}
        self._unleased: set[Governed] = set()
        self._admission: Admission | None = None
        self._revocations: Revocations | None = None
        self._converging: asyncio.Task[None] | None = None
        # One Deadlines per event loop (tests run an app on several loops in turn).
        self._deadlines: Deadlines | None = None
        self._loops: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, Deadlines] = (
            weakref.WeakKeyDictionary()
        )

    def deadlines_on(self, loop: asyncio.AbstractEventLoop) -> Deadlines:
        deadlines = self._deadlines
        if deadlines is None or deadlines.loop is not loop:
            deadlines = self._loops.get(loop)
            if deadlines is None:
                deadlines = self._loops[loop] = Deadlines(loop)
            self._deadlines = deadlines
        return deadlines

    @classmethod
    def from_settings(cls, settings: "Settings") -> "Governance":
        from .admission import parse_rate_limits

        return cls(
            settings.idle_timeout_seconds,
            settings.max_connection_seconds,
            parse_rate_limits(settings.message_rate_limit),
        )

    def watch(self, admission: "Admission") -> None:
        """Close connections of revoked identities; converge the cap of ``admission``."""
        self._admission = admission
        self._revocations = admission.revocations
        admission.revocations.add_listener(self.revoked)

    async def start(self) -> None:
        if self._admission is not None and self._admission.cap is not None:
            self._converging = asyncio.create_task(self._converge_forever(), name="converge-leases")

    async def close(self) -> None:
        if self._converging is not None:
            self._converging.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._converging
            self._converging = None

    def open(self, connection: Governed, identity: str, unleased: bool) -> None:
        """An admitted connection of ``identity`` starts."""
        connections = self._live.get(identity)
        if connections is None:
            connections = self._live[identity] = {}
        connections[connection] = None
        if unleased:
            self._unleased.add(connection)
        # Revoked while its admission waited for the store: caught here.
        if self._revocations is not None and self._revocations.is_revoked(identity):
            connection.stop(REVOKED)

    def end(self, connection: Governed, identity: str) -> None:
        connections = self._live.get(identity)
        if connections is not None:
            connections.pop(connection, None)
            if not connections:
                del self._live[identity]
        self._unleased.discard(connection)

    def revoked(self, identity: str) -> None:
        connections = self._live.get(identity)
        if connections:
            # The first news of it only (Redis also echoes this process's own revocations).
            closing = sum(connection.stop(REVOKED) for connection in list(connections))
            if closing:
                logger.info("closing %d connection(s) of revoked %s", closing, identity)

    async def _converge_forever(self) -> None:
        while True:
            await asyncio.sleep(CONVERGE_SECONDS)
            with contextlib.suppress(StoreUnavailable):
                await self.converge()

    async def converge(self) -> None:
        """Release what could not be released; take the leases the outage skipped."""
        admission = self._admission
        if admission is None or admission.cap is None:
            return
        store, cap = admission.store, admission.cap
        await store.retry_releases()
        if not self._unleased:
            return
        # The leases held already count first (a restarted Redis lost them): the
        # slots go to the connections admitted before the outage.
        await store.renew_leases()
        for connection in list(self._unleased):
            admitted = connection.admitted
            if connection.ended or admitted is None or admitted.identity is None:
                self._unleased.discard(connection)
                continue
            lease = await store.acquire_lease(admitted.identity.user.identity, cap)
            self._unleased.discard(connection)
            if lease is None:
                # Over the cap now the store counts again: whoever came in uncounted goes.
                connection.stop(TOO_MANY_CONNECTIONS)
            elif connection.ended:
                await store.release_lease(lease)
            else:
                admitted.lease = lease
