"""The guard's shared state: handshake rates, connection leases, one-time tickets.

One interface, two implementations chosen by ``WS_LIMITS_STORAGE_URL``:

- ``memory://`` (default): this module. Counts live in the process, so they are
  right for one worker only.
- ``redis://host:port/db``: ``store_redis.py``. Every worker on every host that
  shares the Redis agrees on the counts.

Rates are sliding-window counters in the ``limits`` library's notation
(``50/second;1200/minute``). In Redis they are ``limits``' own algorithm and keys,
every limit in one script; in memory they are ``SlidingWindowCounters`` below:
the same algorithm on a dict, because ``limits``' async memory storage costs
several times more per handshake and sweeps every key after each hit (see
docs/performance.md). Here the tracked addresses are bounded and expired state
leaves in small batches, traffic or not. Connection leases and tickets, which no
library offers, are written here.
"""

import asyncio
import contextlib
import itertools
import math
import time
from collections import OrderedDict
from dataclasses import dataclass
from typing import Any, Protocol

from limits import RateLimitItem

MAX_OPEN_TICKETS = 100_000  # per process; tickets live 30 s, so this is ~3,000 issued/s
DEFAULT_MAX_TRACKED = 100_000  # client addresses; WS_MAX_TRACKED_ADDRESSES sets it
SWEEP_INTERVAL = 1.0  # seconds between looks for expired counters and tickets
SWEEP_BATCH = 256  # entries forgotten per batch: a fraction of a millisecond of work


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
    async def ping(self) -> bool:
        """Whether the store answers now (GET /ready)."""

    async def hit(self, limits: tuple[RateLimitItem, ...], *key: str) -> int:
        """Count one event; 0 when allowed, else the seconds to wait."""

    async def acquire_lease(self, identity: str, cap: int) -> Lease | None:
        """A lease, or None when ``identity`` already holds ``cap`` of them."""

    async def release_lease(self, lease: Lease) -> None: ...
    async def retry_releases(self) -> None:
        """Release again the leases whose release found the store unreachable."""

    async def renew_leases(self) -> None:
        """Renew (or re-add, after a restart lost them) every lease this process holds."""

    async def put_ticket(self, ticket: str, holder: Ticket, ttl: int) -> None: ...
    async def take_ticket(self, ticket: str) -> Ticket | None:
        """The holder of a valid ticket, which is then used up; None otherwise."""


class SlidingWindowCounters:
    """``limits``' sliding-window counter, in process: a limit of N per window admits
    an event while (previous window's count x the share of it still inside the
    sliding window) + this window's count stays under N.

    At most ``max_keys`` keys (client addresses) are tracked, in last-seen order:
    at the bound, a new key makes the least recently seen forget its counts, and
    the keys whose windows have all passed are at the front, where ``sweep`` takes
    them, a bounded batch at a time.
    """

    def __init__(self, max_keys: int = DEFAULT_MAX_TRACKED) -> None:
        self.max_keys = max_keys
        # key -> [its limits, when its counts no longer matter, then per limit:
        # window number, previous window's count, current window's count]. A list
        # updated in place: a hit allocates nothing once a client is known.
        self._entries: OrderedDict[tuple[str, ...], list[Any]] = OrderedDict()

    def __len__(self) -> int:
        return len(self._entries)

    def hit(self, limits: tuple[RateLimitItem, ...], key: tuple[str, ...]) -> int:
        """Count one event against every limit; 0 if all allow it, else seconds to wait."""
        now = time.time()
        entries = self._entries
        counts = entries.get(key)
        if counts is None or counts[0] is not limits:
            if counts is None and len(entries) >= self.max_keys:
                entries.popitem(last=False)  # forget the least recently seen
            counts = entries[key] = [limits, now, *([0.0, 0, 0] * len(limits))]
        else:
            entries.move_to_end(key)
        slot = 2
        for item in limits:
            seconds, amount = item.get_expiry(), item.amount
            window = now // seconds
            if counts[slot] != window:  # a new window began; the last one may still count
                counts[slot + 1] = counts[slot + 2] if counts[slot] == window - 1 else 0
                counts[slot], counts[slot + 2] = window, 0
                counts[1] = max(counts[1], (window + 2) * seconds)  # both windows over
            elapsed = now - window * seconds
            previous, current = counts[slot + 1], counts[slot + 2]
            if math.floor(previous * (1 - elapsed / seconds) + current) + 1 > amount:
                return max(1, math.ceil(seconds - elapsed))  # when this window ends
            counts[slot + 2] = current + 1
            slot += 3
        return 0

    def sweep(self, now: float, budget: int) -> int:
        """Forget up to ``budget`` keys whose windows have all passed; how many went.

        The dict keeps its table (a few dozen bytes per key at its largest) for the
        next flood: freeing a large one at once would hold the loop for a moment.
        """
        entries = self._entries
        removed = 0
        while entries and removed < budget:
            key, counts = next(iter(entries.items()))
            if counts[1] > now:
                break  # seen later than this one: the rest are still counting
            del entries[key]
            removed += 1
        return removed


class MemoryStore:
    """Everything in this process: correct for a single worker."""

    def __init__(self, max_tracked_addresses: int = DEFAULT_MAX_TRACKED) -> None:
        self._counters = SlidingWindowCounters(max_tracked_addresses)
        self._open: dict[str, int] = {}  # identity -> open connections
        self._ids = itertools.count()
        # Insertion order is about expiry order (30 s each, less for a credential
        # that expires sooner): expired tickets are taken from the front.
        self._tickets: OrderedDict[str, tuple[Ticket, float]] = OrderedDict()
        self._sweeping: asyncio.Task[None] | None = None

    async def start(self) -> None:
        self._sweeping = asyncio.create_task(self._sweep_forever(), name="sweep-memory-store")

    async def close(self) -> None:
        if self._sweeping is not None:
            self._sweeping.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._sweeping
            self._sweeping = None
        self._tickets.clear()

    async def ping(self) -> bool:
        return True  # in this process: always there

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

    async def retry_releases(self) -> None:
        pass  # a release in memory never fails

    async def renew_leases(self) -> None:
        pass  # leases in memory never expire

    async def put_ticket(self, ticket: str, holder: Ticket, ttl: int) -> None:
        while len(self._tickets) >= MAX_OPEN_TICKETS:
            self._tickets.popitem(last=False)
        self._tickets[ticket] = (holder, time.monotonic() + ttl)

    async def take_ticket(self, ticket: str) -> Ticket | None:
        found = self._tickets.pop(ticket, None)
        if found is None or found[1] <= time.monotonic():
            return None
        return found[0]

    def sweep(self, budget: int = SWEEP_BATCH) -> int:
        """Forget up to ``budget`` expired counters and tickets; how many went."""
        removed = self._counters.sweep(time.time(), budget)
        now = time.monotonic()
        tickets = self._tickets
        while tickets and removed < budget and next(iter(tickets.values()))[1] <= now:
            tickets.popitem(last=False)
            removed += 1
        return removed

    async def _sweep_forever(self) -> None:
        # Small batches with a yield in between: the event loop is never held
        # for long, however many clients were seen, and with no traffic at all
        # their state still goes once their windows have passed.
        while True:
            full = self.sweep() == SWEEP_BATCH  # then more may wait: go on at once
            await asyncio.sleep(0 if full else SWEEP_INTERVAL)
