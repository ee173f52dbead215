"""The two per-connection mechanisms of ``governance.py`` against simple references:
``Deadlines`` (one loop timer for every connection's next limit) and ``MessageRate``
(its short way must decide exactly as the sliding window it stands for)."""

import asyncio
import random

import pytest

from {{ cookiecutter.package_name }}.governance import (
    RESOLUTION,
    Deadlines,
    MessageLimits,
    MessageRate,
    count_message,
)


class Waiting:
    """A connection as ``Deadlines`` sees it: it notes when its deadline was met."""

    def __init__(self, loop: asyncio.AbstractEventLoop, when: float) -> None:
        self.loop = loop
        self.when = when
        self.passed: list[tuple[float, float]] = []  # (the loop's clock, the `now` given)

    def deadline_passed(self, now: float) -> None:
        self.passed.append((self.loop.time(), now))


def handles(loop: asyncio.AbstractEventLoop) -> int:
    return sum(not handle.cancelled() for handle in loop._scheduled)  # type: ignore[attr-defined]


async def test_every_deadline_is_met_never_early_and_at_most_two_slots_late() -> None:
    loop = asyncio.get_running_loop()
    deadlines = Deadlines(loop)
    before = handles(loop)
    start = loop.time()
    rng = random.Random(7)  # noqa: S311 - a repeatable sequence, not a secret
    waiting = [Waiting(loop, start + rng.uniform(0, 0.8)) for _ in range(300)]
    slots = {connection: deadlines.add(connection, connection.when) for connection in waiting}
    assert len(deadlines) == 300
    assert handles(loop) == before + 1  # one timer for all of them
    cleared = waiting[::3]  # these end before their deadline
    for connection in cleared:
        deadlines.discard(connection, slots[connection])
    await asyncio.sleep(0.8 + 3 * RESOLUTION)
    for connection in waiting:
        if connection in cleared:
            assert connection.passed == []
            continue
        [(clock, now)] = connection.passed
        assert now >= connection.when  # the limit has come by the time given
        assert clock >= connection.when - 0.002  # the loop may run a timer a hair early
        assert clock <= connection.when + 2 * RESOLUTION + 0.25  # a busy machine's slack
    assert len(deadlines) == 0
    assert handles(loop) == before  # nothing waits: no timer either


async def test_an_earlier_deadline_moves_the_timer_and_emptied_slots_cost_nothing() -> None:
    loop = asyncio.get_running_loop()
    deadlines = Deadlines(loop)
    before = handles(loop)
    late = Waiting(loop, loop.time() + 60)
    deadlines.add(late, late.when)
    soon = Waiting(loop, loop.time() + 0.05)
    deadlines.add(soon, soon.when)
    await asyncio.sleep(0.05 + 2 * RESOLUTION + 0.1)
    assert len(soon.passed) == 1
    assert late.passed == []
    assert handles(loop) == before + 1  # the late one's
    # Connections that come and go leave neither buckets nor a pile of slots behind.
    for index in range(1000):
        passing = Waiting(loop, loop.time() + 30 + index * RESOLUTION)
        deadlines.discard(passing, deadlines.add(passing, passing.when))
    assert len(deadlines) == 1
    assert len(deadlines._slots) <= 2 * len(deadlines._buckets) + 64 + 1


async def test_a_deadline_set_again_while_its_slot_fires_comes_in_a_later_slot() -> None:
    loop = asyncio.get_running_loop()
    deadlines = Deadlines(loop)

    class Again(Waiting):
        def deadline_passed(self, now: float) -> None:
            super().deadline_passed(now)
            if len(self.passed) == 1:
                deadlines.add(self, now)  # "not yet": asks again for the same moment

    again = Again(loop, loop.time() + 0.05)
    deadlines.add(again, again.when)
    await asyncio.sleep(0.05 + 4 * RESOLUTION + 0.1)
    assert len(again.passed) == 2
    assert again.passed[1][1] > again.passed[0][1]  # no loop on the same slot
    assert len(deadlines) == 0


class Reference:
    """``limits``' sliding-window counter, every message the long way."""

    def __init__(self, limits: tuple[tuple[int, float], ...], start: float) -> None:
        self.limits = limits
        self.start = start  # windows counted from the connection's start
        self.windows = [(0.0, 0, 0) for _ in limits]  # (window, previous count, count)

    def exceeded(self, now: float) -> bool:
        now -= self.start
        updated = []
        for (amount, seconds), (window, previous, count) in zip(
            self.limits, self.windows, strict=True
        ):
            current = now // seconds
            if current != window:
                previous = count if window == current - 1 else 0
                window, count = current, 0
            share = 1 - (now - current * seconds) / seconds
            if previous * share + count >= amount:
                return True
            updated.append((window, previous, count + 1))
        self.windows = updated
        return False


@pytest.mark.parametrize(
    "limits",
    [((5, 1.0),), ((3, 0.5), (10, 5.0)), ((100, 1.0), (3000, 60.0)), ((1, 2.0), (2, 3.0))],
    ids=str,
)
@pytest.mark.parametrize("seed", range(5))
def test_message_rate_decides_as_the_sliding_window(
    limits: tuple[tuple[int, float], ...], seed: int
) -> None:
    # Counted as the guard counts: an int for the first messages, then a MessageRate.
    rng = random.Random(seed)  # noqa: S311 - a repeatable sequence, not a secret
    now = 1000.0 + rng.random()
    read = MessageLimits.of(limits)
    assert read is not None
    start, count, reference = now, 0, Reference(limits, now)
    decided = handed_over = 0
    for _ in range(3000):
        now += rng.choice((0.0, 0.001, 0.01, 0.05, 0.3, 1.1)) * rng.random()
        refused = reference.exceeded(now)
        counted = count_message(count, read, start, now)
        assert (counted is None) is refused, f"message {decided} at {now}"
        decided += 1
        # Only a MessageRate refuses: an int count that did not go on was taken over.
        handed_over += isinstance(count, int) and not isinstance(counted, int)
        if counted is None:  # the guard closes the connection: start over, as a new one would
            start, count, reference = now, 0, Reference(limits, now)
        else:
            count = counted
    assert decided == 3000
    assert handed_over > 0


def test_a_message_rate_alone_decides_as_the_sliding_window() -> None:
    limits = ((3, 0.5), (10, 5.0))
    read = MessageLimits.of(limits)
    assert read is not None
    rng = random.Random(7)  # noqa: S311 - a repeatable sequence, not a secret
    now = 1000.0
    rate, reference = MessageRate(read, now), Reference(limits, now)
    for _ in range(2000):
        now += rng.choice((0.0, 0.01, 0.2, 0.6)) * rng.random()
        refused = reference.exceeded(now)
        assert rate.exceeded(now) is refused, f"at {now}"
        if refused:
            rate, reference = MessageRate(read, now), Reference(limits, now)
