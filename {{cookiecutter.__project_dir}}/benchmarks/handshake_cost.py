"""What a refused WebSocket handshake costs the server, strategy by strategy.

    python benchmarks/handshake_cost.py            # about two minutes on 2 cores
    python benchmarks/handshake_cost.py --quick    # a smoke run, seconds

Each app in ``apps.py`` runs in its own uvicorn process on 127.0.0.1 with the
protocol stack ``python -m {{ cookiecutter.package_name }}`` uses (h11 + wsproto) and
``--log-level warning`` for all of them, so logging is not part of any figure.
A raw-socket client (``wire_client.py``) sends handshakes without a token; the
server's CPU time (user + system, from /proc via psutil) is read before and
after each batch. Batches for all apps are interleaved over several rounds and
the median is reported, so every ratio compares figures measured side by side.
"""

import argparse
import asyncio
import json
import platform
import statistics
import sys
import tempfile
import time
from collections.abc import Coroutine
from contextlib import ExitStack
from importlib import import_module
from importlib.metadata import version
from pathlib import Path
from typing import TypeVar

import psutil

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))
from apps import BENCH_TOKEN, PATH

from live_server import LiveServer
from wire_client import echo_round_trips, handshake_many, http_get_many

BENCHMARKS = Path(__file__).resolve().parent
STACKS = {  # (--http, --ws)
    # what `python -m {{ cookiecutter.package_name }}` runs: bounded request heads, no false ERROR lines
    "recommended": ("h11", "wsproto"),
    # what a bare `uvicorn app` picks with uvicorn[standard]: faster, see docs/security.md
    "uvicorn-default": ("httptools", "websockets-sansio"),
}
AUTH = [("Authorization", f"Bearer {BENCH_TOKEN}")]

# The strategies this project has: one strategy_*.py module each (see apps.py).
STRATEGIES = [import_module(path.stem) for path in sorted(BENCHMARKS.glob("strategy_*.py"))]
# (label, "module:app" to serve, what a client without a token must receive)
REFUSING_APPS = [
    ("raw ASGI denial (baseline)", "apps:raw", "HTTP 401"),
    *((s.LABEL, f"{s.__name__}:app", s.REFUSAL) for s in STRATEGIES),
    ("FastAPI route send_denial_response", "apps:route_denial", "HTTP 401"),
]


T = TypeVar("T")


def cpu_seconds(process: psutil.Process) -> float:
    times = process.cpu_times()
    return times.user + times.system


def measured(process: psutil.Process, work: Coroutine[None, None, T]) -> tuple[float, float, T]:
    """(server CPU seconds, wall seconds, result) of running ``work``."""
    cpu, wall = cpu_seconds(process), time.perf_counter()
    result = asyncio.run(work)
    return cpu_seconds(process) - cpu, time.perf_counter() - wall, result


def refusal_batch(server: LiveServer, expected: str, count: int, concurrency: int) -> dict:
    process = psutil.Process(server.pid)
    work = handshake_many(server.host, server.port, PATH, [], count, concurrency)
    cpu, wall, outcomes = measured(process, work)
    wrong = {outcome.refusal for outcome in outcomes} - {expected}
    if wrong:
        raise RuntimeError(f"{server.app}: expected {expected}, got {sorted(wrong)}")
    latencies = sorted(outcome.seconds for outcome in outcomes)
    return {
        "cpu_us": cpu / count * 1e6,
        "per_second": count / wall,
        "p50_ms": latencies[len(latencies) // 2] * 1e3,
        "p99_ms": latencies[int(len(latencies) * 0.99)] * 1e3,
    }


def allowed_batch(server: LiveServer, kind: str, count: int) -> dict:
    process = psutil.Process(server.pid)
    if kind == "health":
        work = http_get_many(server.host, server.port, "/health", count, 8)
    else:
        work = echo_round_trips(server.host, server.port, PATH, AUTH, count)
    cpu, wall, _ = measured(process, work)
    return {"cpu_us": cpu / count * 1e6, "per_second": count / wall}


def serve(app: str, stack: str) -> LiveServer:
    http, ws = STACKS[stack]
    args = ("--app-dir", str(BENCHMARKS), "--log-level", "warning", "--http", http)
    return LiveServer(Path(tempfile.mkdtemp()), ws=ws, app=app, extra_args=args)


def median_of(rounds: list[dict]) -> dict:
    return {key: statistics.median(r[key] for r in rounds) for key in rounds[0]}


def run(count: int, rounds: int, concurrency: int, stack: str) -> dict:
    report: dict = {"refusals": {}, "allowed": {}}
    # (guarded app, the same app without the guard) for each strategy that is a guard
    comparisons = [(f"{s.__name__}:app", s.WITHOUT_GUARD) for s in STRATEGIES if s.WITHOUT_GUARD]
    names = {app for _, app, _ in REFUSING_APPS} | {baseline for _, baseline in comparisons}
    with ExitStack() as processes:
        servers = {name: processes.enter_context(serve(name, stack)) for name in sorted(names)}
        samples: dict[str, list[dict]] = {label: [] for label, _, _ in REFUSING_APPS}
        for _, app, expected in REFUSING_APPS:  # warm-up: imports, caches, connection pools
            refusal_batch(servers[app], expected, min(count, 300), concurrency)
        for _ in range(rounds):
            for label, app, expected in REFUSING_APPS:
                samples[label].append(refusal_batch(servers[app], expected, count, concurrency))
        for label, _, _ in REFUSING_APPS:
            report["refusals"][label] = median_of(samples[label])
        for app, baseline in comparisons:
            for kind in ("health", "echo"):
                runs: dict[str, list[dict]] = {"without guard": [], "with guard": []}
                for _ in range(rounds):
                    runs["without guard"].append(allowed_batch(servers[baseline], kind, count * 2))
                    runs["with guard"].append(allowed_batch(servers[app], kind, count * 2))
                report["allowed"][kind] = {k: median_of(v) for k, v in runs.items()}
    report["errors"] = {name: s.error_lines() for name, s in servers.items() if s.error_lines()}
    return report


def environment() -> dict[str, str]:
    packages = ["fastapi", "starlette", "uvicorn", "h11", "wsproto", "websockets"]
    return {
        "machine": f"{platform.machine()}, {psutil.cpu_count()} CPUs, {platform.platform()}",
        "python": platform.python_version(),
        **{name: version(name) for name in packages},
    }


def print_report(report: dict, settings: dict) -> None:
    print("Environment:", ", ".join(f"{k} {v}" for k, v in environment().items()))
    print("Run:", ", ".join(f"{k}={v}" for k, v in settings.items()))
    print()
    baseline = report["refusals"]["raw ASGI denial (baseline)"]["cpu_us"]
    print(
        "| refusing app | server CPU µs / refusal | ratio to raw | handshakes/s | p50 ms | p99 ms |"
    )
    print("| --- | ---: | ---: | ---: | ---: | ---: |")
    for label, r in report["refusals"].items():
        print(
            f"| {label} | {r['cpu_us']:.0f} | {r['cpu_us'] / baseline:.2f} | "
            f"{r['per_second']:.0f} | {r['p50_ms']:.1f} | {r['p99_ms']:.1f} |"
        )
    if report["allowed"]:
        print()
        print("| allowed traffic | without guard | with guard | CPU ratio (with / without) |")
        print("| --- | ---: | ---: | ---: |")
        names = {"health": "GET /health requests/s", "echo": "echo round trips/s"}
        for kind, r in report["allowed"].items():
            off, on = r["without guard"], r["with guard"]
            print(
                f"| {names[kind]} | {off['per_second']:.0f} | {on['per_second']:.0f} | "
                f"{on['cpu_us'] / off['cpu_us']:.3f} |"
            )
    if report["errors"]:
        print("\nserver errors:", report["errors"])


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--handshakes", type=int, default=3000, help="per app per round")
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--concurrency", type=int, default=50)
    parser.add_argument("--quick", action="store_true", help="300 handshakes, 1 round")
    parser.add_argument("--stack", choices=STACKS, default="recommended")
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    if args.quick:
        args.handshakes, args.rounds = 300, 1
    http, ws = STACKS[args.stack]
    settings = {"handshakes": args.handshakes, "rounds": args.rounds}
    settings.update(concurrency=args.concurrency, stack=f"--http {http} --ws {ws}")
    report = run(args.handshakes, args.rounds, args.concurrency, args.stack)
    if args.json:
        print(json.dumps({**report, "environment": environment(), "settings": settings}))
    else:
        print_report(report, settings)
    return 1 if report["errors"] else 0


if __name__ == "__main__":
    sys.exit(main())
