"""Prometheus metrics: refusals, admissions, open connections, handshake duration.

``GET /metrics`` serves them in the Prometheus text format (OpenMetrics when the
scraper asks for it). Under several workers (the launcher's ``--workers N``) it
sets ``PROMETHEUS_MULTIPROC_DIR`` so every worker writes its values there and any
worker's ``/metrics`` answers for all of them. Keep ``/metrics`` off the public
internet (deploy/nginx.conf refuses it from outside; see docs/limits.md).
"""

import os
import re
from pathlib import Path

from fastapi import APIRouter, Request
from fastapi.responses import Response
from prometheus_client import REGISTRY, CollectorRegistry, Counter, Gauge, Histogram, multiprocess
from prometheus_client.exposition import choose_encoder

REFUSALS = Counter("websocket_refusals_total", "WebSocket handshakes refused", ["strategy", "code"])
ADMISSIONS = Counter("websocket_admissions_total", "WebSocket handshakes admitted", ["strategy"])
# "livesum": across workers, the sum over the ones still running.
CONNECTIONS_OPEN = Gauge(
    "websocket_connections_open",
    "Admitted WebSocket connections open now",
    multiprocess_mode="livesum",
)
HANDSHAKE_SECONDS = Histogram(
    "websocket_handshake_duration_seconds",
    "Time the admission pipeline took to decide on a handshake",
    ["strategy"],
    buckets=(0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0),
)

# Labelled children, created once each: .labels() takes a lock and builds a key.
_refusals: dict[tuple[str, str], Counter] = {}
_admissions: dict[str, Counter] = {}
_durations: dict[str, Histogram] = {}


def count_refusal(strategy: str, code: str) -> None:
    child = _refusals.get((strategy, code))
    if child is None:
        child = _refusals[strategy, code] = REFUSALS.labels(strategy, code)
    child.inc()


def count_admission(strategy: str) -> None:
    child = _admissions.get(strategy)
    if child is None:
        child = _admissions[strategy] = ADMISSIONS.labels(strategy)
    child.inc()


def observe_handshake(strategy: str, seconds: float) -> None:
    child = _durations.get(strategy)
    if child is None:
        child = _durations[strategy] = HANDSHAKE_SECONDS.labels(strategy)
    child.observe(seconds)


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
