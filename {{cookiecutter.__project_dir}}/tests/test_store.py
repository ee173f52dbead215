"""The in-memory store: leases, tickets, and the rate limiter's sweep."""

import asyncio

import pytest
from limits import parse

from {{ cookiecutter.package_name }}.store import MAX_OPEN_TICKETS, MemoryStore, SweptMemoryStorage, Ticket

HOLDER = Ticket("alice", "Alice", ("admin",), None)


async def test_tickets_are_single_use() -> None:
    store = MemoryStore()
    await store.put_ticket("t1", HOLDER, 30)
    assert await store.take_ticket("t1") == HOLDER
    assert await store.take_ticket("t1") is None
    assert await store.take_ticket("never") is None


async def test_open_tickets_are_bounded(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("{{ cookiecutter.package_name }}.store.MAX_OPEN_TICKETS", 3)
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


async def test_the_expiry_sweep_runs_once_a_second_not_once_per_hit(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # limits 5.8 schedules a sweep over every key after each hit; SweptMemoryStorage
    # must keep overriding that, or a flood from many addresses costs O(keys) each.
    sweeps = []
    original = SweptMemoryStorage._MemoryStorage__schedule_expiry  # type: ignore[attr-defined]

    async def counting(self: SweptMemoryStorage) -> None:
        sweeps.append(1)
        await original(self)

    monkeypatch.setattr(SweptMemoryStorage, "_MemoryStorage__schedule_expiry", counting)
    from limits.aio.storage import MemoryStorage

    upstream_sweeps = []
    upstream = MemoryStorage._MemoryStorage__schedule_expiry  # type: ignore[attr-defined]

    async def counting_upstream(self: MemoryStorage) -> None:
        upstream_sweeps.append(1)
        await upstream(self)

    monkeypatch.setattr(MemoryStorage, "_MemoryStorage__schedule_expiry", counting_upstream)
    store = MemoryStore()
    limits = (parse("100/second"),)
    for number in range(200):
        await store.hit(limits, f"10.0.0.{number}")
        await asyncio.sleep(0)
    assert len(sweeps) == 200  # the hook is still reached on every hit ...
    assert len(upstream_sweeps) <= 2  # ... but the sweep itself ran at most twice
