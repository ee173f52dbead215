"""How the template's tests share pytest-xdist's workers.

The generated projects' own suites (``-m matrix``) take minutes each, and every
other test seconds. With ``--dist worksteal`` (pyproject.toml) each worker starts
on its share of the collection, and a worker that runs dry takes the second half
of what another has not started. So the suites go last: they are always the end
of a queue, where work is taken from, and are split again until the workers
finish together. They keep their order, a whole suite (with the demo) then a
shorter one without it, so a half of them by count is about half by time. The
short checks stay in long runs on one worker, which bakes each combination they
check once.
"""

import os

import pytest


def pytest_xdist_auto_num_workers(config: pytest.Config) -> int:
    """``-n auto``: one worker more than there are CPUs. A generated suite spends
    much of its time waiting for the timeouts, lifetimes and failovers it
    provokes: with one worker per CPU, a 2-CPU machine was busy 55 % of a run."""
    usable = os.sched_getaffinity(0) if hasattr(os, "sched_getaffinity") else None
    return (len(usable) if usable else os.cpu_count() or 1) + 1


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    items.sort(key=lambda item: item.get_closest_marker("matrix") is not None)  # stable
