"""The guard's shared state: handshake rates, connection leases, one-time tickets.

One interface, two implementations chosen by ``WS_LIMITS_STORAGE_URL``:

- ``memory://`` (default): this module. Counts live in the process, so they are
  right for one worker only.
- ``redis://host:port/db``: ``store_redis.py``. Every worker on every host that
  shares the Redis agrees on the counts.

Rates use the ``limits`` library (sliding-window counters); connection leases
and tickets, which no library offers, are written here.
"""

import itertools
import math
import time
from collections import OrderedDict
from dataclasses import dataclass
from typing import Protocol

from limits import RateLimitItem
from limits.aio.storage import MemoryStorage
from limits.aio.strategies import SlidingWindowCounterRateLimiter

MAX_OPEN_TICKETS = 100_000  # per process; tickets live 30 s, so this is ~3,000 issued/s


class StoreUnavailable(Exception):
    """The store did not answer; admission applies its documented fallback."""


@dataclass(frozen=True, slots=True)
class Ticket:
    """Who asked for a ticket: a ticket admits that identity, once."""

    identity: str
    display_name: str
    scopes: tuple[str, ...]
    expires_at: float | None  # the credential's own expiry: a ticket never outlives it


@dataclass(slots=True)
class Lease:
    """One open connection, counted against its identity until released."""

    identity: str
    id: str
    released: bool = False


class Store(Protocol):
    async def start(self) -> None: ...
    async def close(self) -> None: ...
    async def hit(self, limits: tuple[RateLimitItem, ...], *key: str) -> int:
        """Count one event; 0 when allowed, else the seconds to wait."""

    async def acquire_lease(self, identity: str, cap: int) -> Lease | None:
        """A lease, or None when ``identity`` already holds ``cap`` of them."""

    async def release_lease(self, lease: Lease) -> None: ...
    async def put_ticket(self, ticket: str, holder: Ticket, ttl: int) -> None: ...
    async def take_ticket(self, ticket: str) -> Ticket | None:
        """The holder of a valid ticket, which is then used up; None otherwise."""


async def retry_after(
    limiter: SlidingWindowCounterRateLimiter,
    limits: tuple[RateLimitItem, ...],
    key: tuple[str, ...],
) -> int:
    """Count one event against every limit; 0 if all allow it, else seconds to wait."""
    for item in limits:
        if not await limiter.hit(item, *key):
            stats = await limiter.get_window_stats(item, *key)
            return max(1, math.ceil(stats.reset_time - time.time()))
    return 0


class SweptMemoryStorage(MemoryStorage):
    """``limits``' in-process storage, sweeping expired keys at most once a second.

    Upstream (limits 5.8) starts a sweep over *every* key after each hit: with
    10,000 client addresses tracked that cost 540 µs per handshake, more than the
    handshake itself. Keys are also expired when read, so an occasional sweep
    only reclaims memory. (tests/test_store.py checks the override still applies.)
    """

    SWEEP_INTERVAL = 1.0
    _next_sweep = 0.0

    async def _MemoryStorage__schedule_expiry(self) -> None:
        now = time.monotonic()
        if now >= self._next_sweep:
            self._next_sweep = now + self.SWEEP_INTERVAL
            await super()._MemoryStorage__schedule_expiry()  # type: ignore[misc]


class MemoryStore:
    """Everything in this process: correct for a single worker."""

    def __init__(self) -> None:
        self._limiter = SlidingWindowCounterRateLimiter(SweptMemoryStorage())
        self._open: dict[str, int] = {}  # identity -> open connections
        self._ids = itertools.count()
        # Insertion order is expiry order (one TTL for all): the oldest go first.
        self._tickets: OrderedDict[str, tuple[Ticket, float]] = OrderedDict()

    async def start(self) -> None:
        """Nothing to connect to."""

    async def close(self) -> None:
        self._tickets.clear()

    async def hit(self, limits: tuple[RateLimitItem, ...], *key: str) -> int:
        return await retry_after(self._limiter, limits, key)

    async def acquire_lease(self, identity: str, cap: int) -> Lease | None:
        # No await between the check and the increment: atomic on the event loop.
        held = self._open.get(identity, 0)
        if held >= cap:
            return None
        self._open[identity] = held + 1
        return Lease(identity, str(next(self._ids)))

    async def release_lease(self, lease: Lease) -> None:
        if lease.released:
            return
        lease.released = True
        held = self._open.get(lease.identity, 0) - 1
        if held > 0:
            self._open[lease.identity] = held
        else:
            self._open.pop(lease.identity, None)

    async def put_ticket(self, ticket: str, holder: Ticket, ttl: int) -> None:
        now = time.monotonic()
        while self._tickets and (
            next(iter(self._tickets.values()))[1] <= now or len(self._tickets) >= MAX_OPEN_TICKETS
        ):
            self._tickets.popitem(last=False)
        self._tickets[ticket] = (holder, now + ttl)

    async def take_ticket(self, ticket: str) -> Ticket | None:
        found = self._tickets.pop(ticket, None)
        if found is None or found[1] <= time.monotonic():
            return None
        return found[0]
