"""The in-memory store: leases, tickets, and the rate counters."""

import asyncio
import random
import time
from collections.abc import Callable

import pytest
from limits import parse, parse_many

from {{ cookiecutter.package_name }} import store as store_module
from {{ cookiecutter.package_name }}.settings import Settings
from {{ cookiecutter.package_name }}.store import (
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
    assert len(counters) == 1000
    clock[0] += 1.5  # the current window of each has passed, its count still weighs
    assert counters.sweep(clock[0], 10_000) == 0
    clock[0] += 1.0  # both windows of every idle client have passed
    counters.hit(limit, ("10.9.9",))  # a client seen since: kept
    assert counters.sweep(clock[0], 300) == 300  # a batch at a time
    assert len(counters) == 701
    while counters.sweep(clock[0], 300) == 300:
        pass
    assert len(counters) == 1


def test_tracked_addresses_are_bounded_least_recently_seen_first() -> None:
    counters = SlidingWindowCounters(max_keys=3)
    limit = (parse("1/minute"),)
    for address in ("a", "b", "c"):
        assert counters.hit(limit, (address,)) == 0
    assert counters.hit(limit, ("a",)) > 0  # seen again: now the most recent
    assert counters.hit(limit, ("d",)) == 0  # forgets "b", the least recently seen
    assert len(counters) == 3
    assert counters.hit(limit, ("a",)) > 0  # still counted
    assert counters.hit(limit, ("b",)) == 0  # forgotten: a fresh budget
    many = SlidingWindowCounters(max_keys=100)
    for number in range(1000):
        many.hit(limit, (f"10.0.{number}",))
        assert len(many) <= 100


def test_the_bound_is_a_setting(settings: Settings) -> None:
    assert settings.max_tracked_addresses == 100_000
    assert MemoryStore(max_tracked_addresses=500)._counters.max_keys == 500


async def test_expired_state_leaves_without_traffic(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(store_module, "SWEEP_INTERVAL", 0.05)
    store = MemoryStore()
    await store.start()
    try:
        await store.put_ticket("short", HOLDER, 1)
        await store.put_ticket("long", HOLDER, 30)
        await store.hit((parse("5/second"),), "handshakes", "192.0.2.1")
        assert len(store._tickets) == 2
        assert len(store._counters) == 1
        # No POST, no handshake: the store sweeps itself.
        await wait_until(lambda: len(store._tickets) == 1 and not len(store._counters))
        assert list(store._tickets) == ["long"]
    finally:
        await store.close()


async def wait_until(condition: Callable[[], bool], seconds: float = 10) -> None:
    deadline = time.monotonic() + seconds
    while not condition():
        assert time.monotonic() < deadline, "not within the deadline"
        await asyncio.sleep(0.05)
