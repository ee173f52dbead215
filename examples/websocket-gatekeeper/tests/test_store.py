"""The in-memory store: leases, tickets, and the rate counters."""

import random
import time

import pytest
from limits import parse, parse_many

from websocket_gatekeeper import store as store_module
from websocket_gatekeeper.store import (
    MAX_OPEN_TICKETS,
    MemoryStore,
    SlidingWindowCounters,
    Ticket,
)

HOLDER = Ticket("alice", "Alice", ("admin",), None)


async def test_tickets_are_single_use() -> None:
    store = MemoryStore()
    await store.put_ticket("t1", HOLDER, 30)
    assert await store.take_ticket("t1") == HOLDER
    assert await store.take_ticket("t1") is None
    assert await store.take_ticket("never") is None


async def test_open_tickets_are_bounded(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(store_module, "MAX_OPEN_TICKETS", 3)
    store = MemoryStore()
    for number in range(5):
        await store.put_ticket(f"t{number}", HOLDER, 30)
    assert len(store._tickets) == 3
    assert await store.take_ticket("t0") is None  # the oldest made room
    assert await store.take_ticket("t4") == HOLDER
    assert MAX_OPEN_TICKETS >= 10_000


async def test_rate_limit_waits_are_reported_in_whole_seconds() -> None:
    store = MemoryStore()
    limits = (parse("2/second"),)
    assert await store.hit(limits, "k") == 0
    assert await store.hit(limits, "k") == 0
    assert await store.hit(limits, "k") >= 1
    assert await store.hit(limits, "other") == 0


def test_memory_counters_decide_exactly_like_limits(monkeypatch: pytest.MonkeyPatch) -> None:
    # The in-process counter re-implements limits' sliding-window counter for speed;
    # on the same events at the same times it must admit and refuse the same ones.
    from limits.storage import MemoryStorage
    from limits.strategies import SlidingWindowCounterRateLimiter

    clock = [1_000_000.25]
    monkeypatch.setattr(time, "time", lambda: clock[0])
    items = tuple(parse_many("3/second;10/minute"))
    ours = SlidingWindowCounters()
    reference = SlidingWindowCounterRateLimiter(MemoryStorage())
    events = random.Random(7)  # noqa: S311 (reproducible test events, not secrets)
    decisions = []
    for _ in range(600):
        clock[0] += events.choice([0.0, 0.05, 0.2, 0.7, 1.3, 9.0])
        key = events.choice(["a", "b"])
        allowed_by_limits = all(reference.hit(item, key) for item in items)
        decisions.append((ours.hit(items, (key,)) == 0, allowed_by_limits))
    assert all(mine == theirs for mine, theirs in decisions)
    assert 50 < sum(mine for mine, _ in decisions) < 550  # both answers were exercised


def test_idle_clients_counters_are_swept(monkeypatch: pytest.MonkeyPatch) -> None:
    clock = [1_000.0]
    monkeypatch.setattr(time, "time", lambda: clock[0])
    counters = SlidingWindowCounters()
    limit = (parse("5/second"),)
    for number in range(1000):
        counters.hit(limit, (f"10.0.{number}",))
    assert len(counters._windows) == 1000
    clock[0] += 2.5  # both windows of every idle client have passed
    counters.hit(limit, ("10.9.9",))
    assert len(counters._windows) == 1
