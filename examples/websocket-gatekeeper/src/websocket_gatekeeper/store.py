"""The guard's shared state: handshake rates, connection leases, one-time tickets.

One interface, two implementations chosen by ``WS_LIMITS_STORAGE_URL``:

- ``memory://`` (default): this module. Counts live in the process, so they are
  right for one worker only.
- ``redis://host:port/db``: ``store_redis.py``. Every worker on every host that
  shares the Redis agrees on the counts.

Rates are sliding-window counters in the ``limits`` library's notation
(``50/second;1200/minute``). In Redis they are ``limits``' own algorithm and keys,
every limit in one script; in memory they are ``SlidingWindowCounters`` below:
the same algorithm on a dict, because
``limits``' async memory storage (5.8) costs 16 µs per handshake against 2.4 µs
here, and sweeps every key after each hit (540 µs per handshake with 10,000
addresses tracked; see docs/benchmarks.md). Connection leases and tickets, which
no library offers, are written here.
"""

import itertools
import math
import time
from collections import OrderedDict
from dataclasses import dataclass
from typing import Protocol

from limits import RateLimitItem

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


class SlidingWindowCounters:
    """``limits``' sliding-window counter, in process: a limit of N per window admits
    an event while (previous window's count x the share of it still inside the
    sliding window) + this window's count stays under N."""

    SWEEP_INTERVAL = 1.0  # seconds between sweeps of idle clients' counters

    def __init__(self) -> None:
        # (key, window seconds, limit) -> [window number, previous count, current count].
        # Plain ints in the key (RateLimitItem hashes in Python) and a list updated
        # in place: a hit allocates nothing once a client is known.
        self._windows: dict[tuple[tuple[str, ...], int, int], list[float]] = {}
        self._next_sweep = 0.0

    def hit(self, limits: tuple[RateLimitItem, ...], key: tuple[str, ...]) -> int:
        """Count one event against every limit; 0 if all allow it, else seconds to wait."""
        now = time.time()
        if now >= self._next_sweep:
            self._sweep(now)
        for item in limits:
            seconds, amount = item.get_expiry(), item.amount
            window = now // seconds
            counts = self._windows.get((key, seconds, amount))
            if counts is None:
                counts = self._windows[key, seconds, amount] = [window, 0, 0]
            elif counts[0] != window:  # a new window began; the last one may still count
                counts[1] = counts[2] if counts[0] == window - 1 else 0
                counts[0], counts[2] = window, 0
            elapsed = now - window * seconds
            if math.floor(counts[1] * (1 - elapsed / seconds) + counts[2]) + 1 > amount:
                return max(1, math.ceil(seconds - elapsed))  # when this window ends
            counts[2] += 1
        return 0

    def _sweep(self, now: float) -> None:
        self._next_sweep = now + self.SWEEP_INTERVAL
        stale = [slot for slot, counts in self._windows.items() if counts[0] < now // slot[1] - 1]
        for slot in stale:
            del self._windows[slot]


class MemoryStore:
    """Everything in this process: correct for a single worker."""

    def __init__(self) -> None:
        self._counters = SlidingWindowCounters()
        self._open: dict[str, int] = {}  # identity -> open connections
        self._ids = itertools.count()
        # Insertion order is expiry order (one TTL for all): the oldest go first.
        self._tickets: OrderedDict[str, tuple[Ticket, float]] = OrderedDict()

    async def start(self) -> None:
        """Nothing to connect to."""

    async def close(self) -> None:
        self._tickets.clear()

    async def hit(self, limits: tuple[RateLimitItem, ...], *key: str) -> int:
        return self._counters.hit(limits, key)

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
