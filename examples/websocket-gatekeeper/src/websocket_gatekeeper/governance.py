"""Governing admitted connections: what the guard enforces after the handshake.

- Idle timeout and maximum lifetime (``WS_IDLE_TIMEOUT_SECONDS``,
  ``WS_MAX_CONNECTION_SECONDS``): close ``4408``. Each connection has ONE timer
  handle on the event loop for its earliest limit;
  a message only notes the time, and the timer, when it fires early because
  messages came meanwhile, sets itself again. No task per connection.
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
import logging
from collections.abc import Iterable
from typing import TYPE_CHECKING, Protocol

from limits import RateLimitItem

from .rejections import REVOKED, TOO_MANY_CONNECTIONS, Rejection
from .store import StoreUnavailable

if TYPE_CHECKING:
    from .admission import Admission, Admitted
    from .revocations import Revocations
    from .settings import Settings

logger = logging.getLogger(__name__)

CONVERGE_SECONDS = 1.0  # how often missing leases are taken and failed releases retried


class Governed(Protocol):
    """What this module needs of a live connection (``guard.GuardedConnection``)."""

    admitted: "Admitted | None"
    ended: bool

    def stop(self, rejection: Rejection) -> bool: ...


class MessageRate:
    """``limits``' sliding-window counter for one connection, on the loop's clock:
    a limit of N per window admits a message while (the previous window's count x
    the share of it still inside the sliding window) + this window's count < N."""

    __slots__ = ("_counts", "_limits")

    def __init__(self, limits: tuple[tuple[int, float], ...]) -> None:
        self._limits = limits  # (amount, window in seconds): windows_of(), once per process
        # Per limit: window number, previous window's count, this window's count.
        self._counts = [0.0, 0, 0] * len(limits)

    def exceeded(self, now: float) -> bool:
        """Count one message; True when a limit refuses it."""
        counts = self._counts
        slot = 0
        for amount, seconds in self._limits:
            window = now // seconds
            if counts[slot] != window:
                counts[slot + 1] = counts[slot + 2] if counts[slot] == window - 1 else 0
                counts[slot], counts[slot + 2] = window, 0
            share = 1 - (now - window * seconds) / seconds
            if counts[slot + 1] * share + counts[slot + 2] >= amount:
                return True
            counts[slot + 2] += 1
            slot += 3
        return False


def windows_of(limits: Iterable[RateLimitItem]) -> tuple[tuple[int, float], ...]:
    return tuple((item.amount, float(item.get_expiry())) for item in limits)


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
        self.message_windows = windows_of(message_limits)  # for MessageRate
        self._live: dict[str, set[Governed]] = {}  # identity -> its connections here
        self._unleased: set[Governed] = set()
        self._admission: Admission | None = None
        self._revocations: Revocations | None = None
        self._converging: asyncio.Task[None] | None = None

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
            connections = self._live[identity] = set()
        connections.add(connection)
        if unleased:
            self._unleased.add(connection)
        # Revoked while its admission waited for the store: caught here.
        if self._revocations is not None and self._revocations.is_revoked(identity):
            connection.stop(REVOKED)

    def end(self, connection: Governed, identity: str) -> None:
        connections = self._live.get(identity)
        if connections is not None:
            connections.discard(connection)
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
