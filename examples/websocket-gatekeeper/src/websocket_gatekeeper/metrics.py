"""Prometheus metrics: refusals, admissions, open connections, handshake duration.

``GET /metrics`` serves them in the Prometheus text format (OpenMetrics when the
scraper asks for it). Keep ``/metrics`` off the public internet (deploy/nginx.conf
refuses it from outside; see docs/limits.md).

Counted one of two ways, chosen when the process starts:

- one process (the default): plain numbers of this process (``LocalCounts``),
  read when ``/metrics`` is scraped. A prometheus_client metric takes a lock on
  every change, and an admitted connection makes four changes (what that cost:
  docs/performance.md).
- several workers (the launcher's ``--workers N`` sets ``PROMETHEUS_MULTIPROC_DIR``):
  prometheus_client's metrics (``SharedCounts``), which write every change to a
  file in that folder, so any worker's ``/metrics`` answers for all of them.
"""

import bisect
import itertools
import os
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Protocol

from fastapi import APIRouter, Request
from fastapi.responses import Response
from prometheus_client import REGISTRY, CollectorRegistry, Counter, Gauge, Histogram, multiprocess
from prometheus_client.core import (
    CounterMetricFamily,
    GaugeMetricFamily,
    HistogramMetricFamily,
    Metric,
)
from prometheus_client.exposition import choose_encoder
from prometheus_client.utils import floatToGoString

REFUSALS = ("websocket_refusals_total", "WebSocket handshakes refused")
ADMISSIONS = ("websocket_admissions_total", "WebSocket handshakes admitted")
CONNECTIONS_OPEN = ("websocket_connections_open", "Admitted WebSocket connections open now")
HANDSHAKE_SECONDS = (
    "websocket_handshake_duration_seconds",
    "Time the admission pipeline took to decide on a handshake",
)
BUCKETS = (0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0)
BOUNDS = (*map(floatToGoString, BUCKETS), "+Inf")  # the buckets' "le" labels


class Counts(Protocol):
    def refused(self, strategy: str, code: str) -> None: ...
    def admitted(self, strategy: str) -> None: ...
    def timed(self, strategy: str, seconds: float) -> None: ...
    def opened(self) -> None: ...
    def closed(self) -> None: ...


class LocalCounts:
    """The counts of this process as plain numbers; a prometheus_client collector.

    Only the event loop's thread changes them (the guard and the admission
    pipeline), so they need no lock. Bounded: strategies and refusal codes are
    the project's own constants, never a client's text.
    """

    def __init__(self) -> None:
        self._refusals: dict[tuple[str, str], int] = {}
        self._admissions: dict[str, int] = {}
        self._open = 0
        # Per strategy: how many handshakes took up to each bucket's bound (the
        # last one: longer than all of them), and their total time.
        self._durations: dict[str, list[int]] = {}
        self._seconds: dict[str, float] = {}

    def refused(self, strategy: str, code: str) -> None:
        key = (strategy, code)
        self._refusals[key] = self._refusals.get(key, 0) + 1

    def admitted(self, strategy: str) -> None:
        self._admissions[strategy] = self._admissions.get(strategy, 0) + 1

    def timed(self, strategy: str, seconds: float) -> None:
        counts = self._durations.get(strategy)
        if counts is None:
            counts = self._durations[strategy] = [0] * (len(BUCKETS) + 1)
            self._seconds[strategy] = 0.0
        counts[bisect.bisect_left(BUCKETS, seconds)] += 1
        self._seconds[strategy] += seconds

    def opened(self) -> None:
        self._open += 1

    def closed(self) -> None:
        self._open -= 1

    def collect(self) -> Iterator[Metric]:
        """Called by prometheus_client when ``/metrics`` is read, in a thread of the
        threadpool: each dict is copied in one step (atomic under the GIL) while the
        event loop may be counting."""
        refusals = CounterMetricFamily(*REFUSALS, labels=["strategy", "code"])
        for (strategy, code), count in self._refusals.copy().items():
            refusals.add_metric([strategy, code], count)
        admissions = CounterMetricFamily(*ADMISSIONS, labels=["strategy"])
        for strategy, count in self._admissions.copy().items():
            admissions.add_metric([strategy], count)
        durations = HistogramMetricFamily(*HANDSHAKE_SECONDS, labels=["strategy"])
        seconds = self._seconds.copy()
        for strategy, counts in self._durations.copy().items():
            cumulative = list(itertools.accumulate(counts.copy()))
            buckets = list(zip(BOUNDS, cumulative, strict=True))
            durations.add_metric([strategy], buckets, seconds.get(strategy, 0.0))
        yield refusals
        yield admissions
        yield GaugeMetricFamily(*CONNECTIONS_OPEN, value=self._open)
        yield durations


class SharedCounts:
    """The same counts as prometheus_client's metrics, for several workers: each
    change is written to this worker's file in ``PROMETHEUS_MULTIPROC_DIR``."""

    def __init__(self) -> None:
        self._refusal_counter = Counter(*REFUSALS, ["strategy", "code"])
        self._admission_counter = Counter(*ADMISSIONS, ["strategy"])
        # "livesum": across workers, the sum over the ones still running.
        self._open = Gauge(*CONNECTIONS_OPEN, multiprocess_mode="livesum")
        self._histogram = Histogram(*HANDSHAKE_SECONDS, ["strategy"], buckets=BUCKETS)
        # Labelled children, made once each: .labels() takes a lock and builds a key.
        self._refusals: dict[tuple[str, str], Counter] = {}
        self._admissions: dict[str, Counter] = {}
        self._durations: dict[str, Histogram] = {}

    def refused(self, strategy: str, code: str) -> None:
        child = self._refusals.get((strategy, code))
        if child is None:
            child = self._refusals[strategy, code] = self._refusal_counter.labels(strategy, code)
        child.inc()

    def admitted(self, strategy: str) -> None:
        child = self._admissions.get(strategy)
        if child is None:
            child = self._admissions[strategy] = self._admission_counter.labels(strategy)
        child.inc()

    def timed(self, strategy: str, seconds: float) -> None:
        child = self._durations.get(strategy)
        if child is None:
            child = self._durations[strategy] = self._histogram.labels(strategy)
        child.observe(seconds)

    def opened(self) -> None:
        self._open.inc()

    def closed(self) -> None:
        self._open.dec()


def start_counting() -> Counts:
    if "PROMETHEUS_MULTIPROC_DIR" in os.environ:
        return SharedCounts()
    counts = LocalCounts()
    REGISTRY.register(counts)
    return counts


COUNTS = start_counting()
count_refusal = COUNTS.refused
count_admission = COUNTS.admitted
observe_handshake = COUNTS.timed
connection_opened = COUNTS.opened
connection_closed = COUNTS.closed


router = APIRouter()

LIVE_GAUGE_FILE = re.compile(r"gauge_live\w+_(\d+)\.db")


@router.get("/metrics", include_in_schema=False)
def prometheus_metrics(request: Request) -> Response:
    registry: CollectorRegistry = REGISTRY
    directory = os.environ.get("PROMETHEUS_MULTIPROC_DIR")
    if directory is not None:  # several workers: add up what each wrote
        forget_dead_workers(Path(directory))
        registry = CollectorRegistry()
        multiprocess.MultiProcessCollector(registry)
    # The format the scraper asks for (Prometheus' text format, or OpenMetrics),
    # with the Content-Type that matches it.
    encoder, content_type = choose_encoder(request.headers.get("accept", ""))
    return Response(encoder(registry), media_type=content_type)


def forget_dead_workers(directory: Path) -> None:
    """Drop the open-connection gauges of workers that died (e.g. killed and restarted)."""
    for path in directory.glob("gauge_live*.db"):
        match = LIVE_GAUGE_FILE.fullmatch(path.name)
        if match and not process_alive(int(match.group(1))):
            multiprocess.mark_process_dead(int(match.group(1)), str(directory))


def process_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True  # exists, owned by someone else
    return True
