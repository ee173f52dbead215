"""The in-memory rate state under 300,000 client addresses: bounded, swept in
batches that never hold the event loop for a millisecond, and given back once the
windows have passed (all but the dict's table, kept for the next flood: freeing
it at once would be the one long pause). The figures are printed (``pytest -s``)."""

import gc
import time
import tracemalloc

import psutil
import pytest
from limits import parse_many

from {{ cookiecutter.package_name }}.store import (
    SWEEP_BATCH,
    SlidingWindowCounters,
)

ADDRESSES = 300_000
LIMITS = tuple(parse_many("50/second;1200/minute"))  # the default WS_HANDSHAKE_RATE_LIMIT


def address(number: int) -> tuple[str, str]:
    return ("handshakes", f"10.{number >> 16}.{(number >> 8) & 255}.{number & 255}")


@pytest.fixture
def clock(monkeypatch: pytest.MonkeyPatch) -> list[float]:
    now = [1_000_000.0]
    monkeypatch.setattr(time, "time", lambda: now[0])
    return now


def test_the_bound_holds_under_300000_addresses(clock: list[float]) -> None:
    counters = SlidingWindowCounters(max_keys=50_000)
    for number in range(ADDRESSES):
        counters.hit(LIMITS, address(number))
        clock[0] += 0.0001
    assert len(counters) == 50_000
    # The most recent are the ones kept: they still count.
    assert counters.hit(LIMITS, address(ADDRESSES - 1)) == 0
    assert counters.hit(LIMITS, address(ADDRESSES - 2)) == 0


def flood_and_sweep(clock: list[float]) -> tuple[float, float, int, tuple[float, ...]]:
    """300,000 addresses, then sweeps until their windows are gone: the slowest
    sweep (CPU and wall seconds), how many sweeps, and RSS before/peak/after."""
    counters = SlidingWindowCounters(max_keys=ADDRESSES)
    gc.collect()
    process = psutil.Process()
    rss_before = process.memory_info().rss
    for number in range(ADDRESSES):
        counters.hit(LIMITS, address(number))
    rss_peak = process.memory_info().rss
    assert len(counters) == ADDRESSES
    clock[0] += 2 * 60 + 1  # every window of every address has passed
    slowest_cpu = slowest_wall = 0.0
    sweeps = 0
    while True:
        started, started_cpu = time.perf_counter(), time.thread_time()
        work = counters.sweep(clock[0], SWEEP_BATCH)
        slowest_wall = max(slowest_wall, time.perf_counter() - started)
        slowest_cpu = max(slowest_cpu, time.thread_time() - started_cpu)
        sweeps += 1
        if not work:
            break
    assert len(counters) == 0
    gc.collect()
    rss_after = process.memory_info().rss
    return slowest_cpu, slowest_wall, sweeps, (rss_before, rss_peak, rss_after)


def test_no_sweep_holds_the_loop_for_a_millisecond(clock: list[float]) -> None:
    # The slowest sweep's CPU time (what the sweep costs, whatever else the machine
    # runs): the best of up to three floods, so a busy machine cannot fail it, and
    # a sweep that grows with the number of addresses still would (by far).
    for _ in range(3):
        slowest_cpu, slowest_wall, sweeps, rss = flood_and_sweep(clock)
        print(
            f"\n{ADDRESSES} addresses: {sweeps} sweeps of up to {SWEEP_BATCH}; slowest "
            f"{slowest_cpu * 1000:.3f} ms CPU ({slowest_wall * 1000:.3f} ms wall); RSS "
            + " -> ".join(f"{value / 2**20:.1f}" for value in rss)
            + " MB"
        )
        rss_before, rss_peak, rss_after = rss
        # Most of what the flood took is given back (the dict keeps its table).
        assert rss_after - rss_before < (rss_peak - rss_before) / 4
        if slowest_cpu < 0.001:
            break
    assert slowest_cpu < 0.001


def test_memory_returns_to_its_baseline(clock: list[float]) -> None:
    counters = SlidingWindowCounters(max_keys=ADDRESSES)
    counters.hit(LIMITS, address(0))
    clock[0] += 2 * 60 + 1
    counters.sweep(clock[0], SWEEP_BATCH)
    gc.collect()
    tracemalloc.start()
    try:
        baseline = tracemalloc.get_traced_memory()[0]
        for number in range(100_000):
            counters.hit(LIMITS, address(number))
        peak = tracemalloc.get_traced_memory()[0]
        clock[0] += 2 * 60 + 1
        while counters.sweep(clock[0], SWEEP_BATCH):
            pass
        gc.collect()
        after = tracemalloc.get_traced_memory()[0]
    finally:
        tracemalloc.stop()
    print(
        f"\n100000 addresses, Python memory: {baseline / 1024:.0f} KB -> "
        f"{peak / 2**20:.1f} MB -> {after / 2**20:.1f} MB ({peak / 100_000:.0f} B per "
        f"address at the peak, {after / 100_000:.0f} B kept: the dict's table)"
    )
    assert len(counters) == 0
    # Every counter is gone; what stays is the dict's table, sized for the flood.
    assert after - baseline < (peak - baseline) / 4
