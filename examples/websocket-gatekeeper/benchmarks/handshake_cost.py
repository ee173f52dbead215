"""What the generated app costs the server, next to raw ASGI apps doing the same thing.

    python benchmarks/handshake_cost.py            # about four minutes on 2 cores
    python benchmarks/handshake_cost.py --quick    # a smoke run, well under a minute
    python benchmarks/handshake_cost.py --json     # the report as JSON, per-round figures included

Every app runs in its own uvicorn process on 127.0.0.1 with the stack
the ``python -m`` launcher uses (``--http h11 --ws wsproto``) and
``--log-level warning`` for all of them, so logging is in no figure. The generated
app runs with the project's defaults (rate limit, connection cap, metrics,
leases), except the limits are raised so they never fire for a benchmark client
that connects from one address over and over (see ``GENERATED_ENV``).

Method: server CPU time per operation, read from ``/proc/<pid>/task/*/schedstat``
(nanoseconds on the CPU, summed over the server's threads) before and after
each batch. The apps of a comparison run their batches in turn, in alternating
order (A, B, then B, A, ...); each round gives a ratio, and the report shows the
median of the per-round ratios and their interquartile range. A raw-socket
client (``wire_client.py``) keeps the client's own cost low. docs/benchmarks.md
says what the figures mean.
"""

import argparse
import asyncio
import json
import platform
import resource
import shutil
import statistics
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Coroutine, Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass
from importlib import import_module
from importlib.metadata import version
from pathlib import Path
from typing import Any, NamedTuple

import psutil

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))
import credential_variants
from apps import PATH

from websocket_gatekeeper import paths

from credentials import TOKEN
from live_server import LiveServer
from redis_server import RedisServer
from wire_client import (
    MESSAGE,
    Held,
    close_all,
    echo_round_trips,
    echo_sample,
    http_get_many,
    open_many,
    run,
    sessions,
)

BENCHMARKS = Path(__file__).resolve().parent
GENERATED = "websocket_gatekeeper.main:app"
STRATEGIES = [import_module(path.stem) for path in sorted(BENCHMARKS.glob("strategy_*.py"))]
AUTH = [("Authorization", f"Bearer {TOKEN}")]
MAX_MESSAGE_BYTES = 64 * 1024  # the project's default WS_MAX_MESSAGE_BYTES, for every app

# The project's defaults, except what would fire for a benchmark client: every
# connection comes from 127.0.0.1, and one identity opens thousands of them.
GENERATED_ENV = {
    # default "50/second;1200/minute": still two limits, checked on every handshake
    "WS_HANDSHAKE_RATE_LIMIT": "1000000/second;60000000/minute",
    "WS_MAX_CONNECTIONS_PER_IDENTITY": "1000000",  # default 100, still counted with leases
    "WS_MAX_MESSAGE_BYTES": str(MAX_MESSAGE_BYTES),
    "WS_LIMITS_STORAGE_URL": "memory://",
}
# The same app without the rate limit and the connection cap: what the limits cost.
NO_RATE_LIMIT_ENV = {
    **GENERATED_ENV,
    "WS_HANDSHAKE_RATE_LIMIT": "off",
    "WS_MAX_CONNECTIONS_PER_IDENTITY": "off",
}
NO_RATE_LIMIT = "limits off"
IN_REDIS = "limits in Redis on 127.0.0.1"


@dataclass(frozen=True)
class Settings:
    count: int  # sessions or refusals per batch
    rounds: int  # rounds per comparison: one batch of each app, the order alternating
    concurrency: int  # operations in flight during a batch
    messages: int  # echo round trips (or GET /health requests) per batch
    held: int  # connections held open in the memory measurement
    storm: int  # clients connecting at once in the reconnect storm
    resource_rounds: int  # rounds of the memory and storm measurements (fresh processes)


# Many short batches, alternated: a machine's speed drifts over seconds, and
# alternating often cancels the drift. The "noise floor" comparison (one app in
# two processes) shows what is left: 0.99-1.01 on the development machine.
FULL = Settings(
    count=300, rounds=40, concurrency=20, messages=1000, held=5000, storm=10000, resource_rounds=2
)
QUICK = Settings(
    count=40, rounds=4, concurrency=10, messages=200, held=200, storm=500, resource_rounds=1
)


def cpu_ns(pid: int) -> int:
    """Nanoseconds the process has run on a CPU: schedstat's first field, summed over threads."""
    total = 0
    for task in Path(f"/proc/{pid}/task").iterdir():
        try:
            total += int((task / "schedstat").read_text(encoding="ascii").split()[0])
        except FileNotFoundError:
            continue  # a thread that just ended
    return total


class Servers:
    """The uvicorn processes of one run, started on first use, stopped at the end."""

    def __init__(self, stack: ExitStack) -> None:
        self.stack = stack
        self.running: dict[str, LiveServer] = {}
        self.errors: dict[str, list[str]] = {}

    def get(
        self, name: str, app: str, http: str = "h11", env: dict[str, str] | None = None
    ) -> LiveServer:
        if name not in self.running:
            self.running[name] = self.stack.enter_context(self.watched(name, app, http, env))
        return self.running[name]

    @contextmanager
    def fresh(self, name: str, app: str, env: dict[str, str] | None) -> Iterator[LiveServer]:
        """A new process, for figures a previous run would skew (memory)."""
        with self.watched(name, app, "h11", env) as server:
            yield server

    @contextmanager
    def watched(
        self,
        name: str,
        app: str,
        http: str,
        env: dict[str, str] | None = None,
    ) -> Iterator[LiveServer]:
        if env is None:
            env = GENERATED_ENV if app == GENERATED else {}
        args = ("--app-dir", str(BENCHMARKS), "--http", http, "--log-level", "warning")
        args += ("--ws-max-size", str(MAX_MESSAGE_BYTES))
        server = LiveServer(Path(tempfile.mkdtemp()), app=app, env=env, extra_args=args)
        try:
            with server:
                yield server
        finally:
            if server.process is not None and server.error_lines():
                self.errors.setdefault(name, []).extend(server.error_lines())


@dataclass(frozen=True)
class Subject:
    """One side of a comparison: what runs, where, and what every operation must see."""

    label: str
    server: str  # a key of the run's server table
    kind: str  # "session", "echo" (messages on open connections) or "http"
    path: str = PATH
    headers: tuple[tuple[str, str], ...] = ()
    message: bytes | None = None  # sent after an accept, to be echoed
    expected: str = "echoed"  # Outcome.result of every session


def work(subject: Subject, server: LiveServer, count: int, settings: Settings) -> Coroutine:
    host, port = server.host, server.port
    if subject.kind == "http":
        return http_get_many(host, port, subject.path, count, 8)
    return sessions(
        host, port, subject.path, subject.headers, count, settings.concurrency, subject.message
    )


def batch(subject: Subject, server: LiveServer, count: int, settings: Settings) -> float:
    """Server CPU µs per operation for one batch; raises if any operation went wrong."""
    before = cpu_ns(server.pid)
    result = run(work(subject, server, count, settings))
    used = cpu_ns(server.pid) - before
    if subject.kind == "session":
        seen = Counter(outcome.result for outcome in result)
        if set(seen) != {subject.expected}:
            raise RuntimeError(f"{subject.label}: expected {subject.expected}, got {dict(seen)}")
    elif result != count:
        raise RuntimeError(f"{subject.label}: {count - result} of {count} operations failed")
    return used / count / 1000


def in_turn(group: list[Subject], rounds: int) -> Iterator[Subject]:
    """Every subject once per round, the order reversed every other round (A, B, B, A, ...)."""
    for round_number in range(rounds):
        yield from group if round_number % 2 == 0 else reversed(group)


def compare(
    group: list[Subject], servers: dict[str, LiveServer], count: int, settings: Settings
) -> dict[str, Any]:
    """Batches of ``count`` operations of every subject in turn, for every round."""
    samples: dict[str, list[float]] = {subject.label: [] for subject in group}
    for subject in group:  # warm-up: imports, caches, pools, the allocator's arenas
        batch(subject, servers[subject.server], max(count // 4, 20), settings)
    for subject in in_turn(group, settings.rounds):
        samples[subject.label].append(batch(subject, servers[subject.server], count, settings))
    return summary(samples)


def compare_messages(
    group: list[Subject], servers: dict[str, LiveServer], settings: Settings
) -> dict[str, Any]:
    """Echo round trips on connections opened once per subject: messages only, no handshakes."""
    samples: dict[str, list[float]] = {subject.label: [] for subject in group}

    async def measure() -> None:
        held = {}
        for subject in group:
            server = servers[subject.server]
            held[subject.label] = await open_many(
                server.host, server.port, subject.path, subject.headers, 10, 10
            )
            if held[subject.label].failed:
                raise RuntimeError(f"{subject.label}: {held[subject.label].failed}")
        try:
            for subject in group:
                await echo_round_trips(held[subject.label], settings.messages // 4)
            for subject in in_turn(group, settings.rounds):
                pid = servers[subject.server].pid
                before = cpu_ns(pid)
                echoed = await echo_round_trips(held[subject.label], settings.messages)
                used = cpu_ns(pid) - before
                if echoed != settings.messages:
                    raise RuntimeError(f"{subject.label}: {echoed} of {settings.messages} echoed")
                samples[subject.label].append(used / settings.messages / 1000)
        finally:
            for connections in held.values():
                await close_all(connections)

    run(measure())
    return summary(samples)


def summary(samples: dict[str, list[float]]) -> dict[str, Any]:
    """µs per operation (median over rounds) and, for each subject after the first,
    the spread of its per-round ratios to the first."""
    labels = list(samples)
    baseline = samples[labels[0]]
    return {
        "samples": samples,
        "us": {label: statistics.median(values) for label, values in samples.items()},
        "ratios": {
            label: spread([a / b for a, b in zip(samples[label], baseline, strict=True)])
            for label in labels[1:]
        },
    }


def spread(values: list[float]) -> dict[str, float]:
    """Median, quartiles and extremes of per-round ratios."""
    if len(values) == 1:
        return dict.fromkeys(("median", "q1", "q3", "min", "max"), values[0])
    q1, median, q3 = statistics.quantiles(values, n=4, method="inclusive")
    return {"median": median, "q1": q1, "q3": q3, "min": min(values), "max": max(values)}


async def hold(server: LiveServer, path: str, headers: list, total: int, concurrency: int) -> dict:
    """Open ``total`` connections and keep them: memory, time, CPU, echoes still answered."""
    process = psutil.Process(server.pid)
    warm = await open_many(server.host, server.port, path, headers, 50, 50)
    await close_all(warm)
    await asyncio.sleep(0.5)
    rss, cpu = process.memory_info().rss, cpu_ns(server.pid)
    held: Held = await open_many(server.host, server.port, path, headers, total, concurrency)
    cpu = cpu_ns(server.pid) - cpu
    await asyncio.sleep(0.5)
    rss = process.memory_info().rss - rss
    try:
        answered = await echo_sample(held, 100)
    finally:
        await close_all(held)
    return {
        "admitted": len(held.connections),
        "failed": Counter(held.failed),
        "seconds": held.seconds,
        "cpu_us_per_connection": cpu / total / 1000,
        "kb_per_connection": rss / max(len(held.connections), 1) / 1024,
        "echoes_answered": answered,
        "echoes_sampled": min(100, len(held.connections)),
    }


class Candidate(NamedTuple):
    """An app for the memory and storm measurements, each run in a fresh process."""

    label: str
    app: str
    path: str
    headers: list[tuple[str, str]]
    env: dict[str, str] | None = None  # None: the app's benchmark defaults


def resource_rounds(
    candidates: list[Candidate],
    servers: Servers,
    total: int,
    concurrency: int,
    settings: Settings,
) -> dict[str, Any]:
    """``hold`` for each candidate in a fresh process, alternating the order."""
    samples: dict[str, list[dict]] = {candidate.label: [] for candidate in candidates}
    for round_number in range(settings.resource_rounds):
        order = candidates if round_number % 2 == 0 else candidates[::-1]
        for label, app, path, headers, env in order:
            with servers.fresh(label, app, env) as server:
                result = run(hold(server, path, headers, total, concurrency))
            if result["admitted"] != total or result["echoes_answered"] != result["echoes_sampled"]:
                raise RuntimeError(f"{label}: {result}")
            samples[label].append(result)
    return samples


def memory_and_storm(servers: Servers, settings: Settings) -> dict[str, Any]:
    routes = [(s.LABEL, paths.ECHO_ENDPOINTS[s.STRATEGY]) for s in STRATEGIES]
    generated = [
        Candidate(f"generated {label} route", GENERATED, path, AUTH) for label, path in routes
    ]
    report: dict[str, Any] = {}

    # Memory: N connections opened 100 at a time and held, on one worker.
    candidates = [
        Candidate("bare FastAPI echo", "apps:fastapi_echo", PATH, []),
        Candidate("raw ASGI echo", "apps:raw_echo", PATH, []),
        *generated,
    ]
    samples = resource_rounds(candidates, servers, settings.held, 100, settings)
    baseline = samples["bare FastAPI echo"]
    report["held"] = {
        label: {
            "kb_per_connection": statistics.median(r["kb_per_connection"] for r in rounds),
            "seconds": statistics.median(r["seconds"] for r in rounds),
            "echoes": f"{sum(r['echoes_answered'] for r in rounds)}/"
            f"{sum(r['echoes_sampled'] for r in rounds)}",
            "ratio": spread(
                [
                    r["kb_per_connection"] / b["kb_per_connection"]
                    for r, b in zip(rounds, baseline, strict=True)
                ]
            ),
        }
        for label, rounds in samples.items()
    }

    # Reconnect storm: every client at once, as after a deploy. (The generated app
    # raises the garbage collector's threshold at start-up for this: main.py.)
    candidates = [Candidate("raw ASGI echo", "apps:raw_echo", PATH, []), *generated]
    if credential_variants.EVERY_HANDSHAKE:
        # The storm's clients share one token; after a real deploy each brings its
        # own, verified once: this is that cost, where tokens are remembered.
        label, path = routes[0]
        every = {**GENERATED_ENV, **credential_variants.EVERY_HANDSHAKE}
        name = f"generated {label} route, every handshake verified"
        candidates.append(Candidate(name, GENERATED, path, AUTH, every))
    samples = resource_rounds(candidates, servers, settings.storm, settings.storm, settings)
    baseline = samples["raw ASGI echo"]
    report["storm"] = {
        label: {
            "admitted": statistics.median(r["admitted"] for r in rounds),
            "seconds": statistics.median(r["seconds"] for r in rounds),
            "cpu_us_per_connection": statistics.median(r["cpu_us_per_connection"] for r in rounds),
            "time_ratio": spread(
                [r["seconds"] / b["seconds"] for r, b in zip(rounds, baseline, strict=True)]
            ),
            "cpu_ratio": spread(
                [
                    r["cpu_us_per_connection"] / b["cpu_us_per_connection"]
                    for r, b in zip(rounds, baseline, strict=True)
                ]
            ),
        }
        for label, rounds in samples.items()
    }
    return report


def cpu_comparisons(servers: Servers, settings: Settings) -> dict[str, Any]:
    running = {
        "raw echo": servers.get("raw echo", "apps:raw_echo"),
        "generated": servers.get("generated", GENERATED),
        NO_RATE_LIMIT: servers.get(NO_RATE_LIMIT, GENERATED, env=NO_RATE_LIMIT_ENV),
        "fastapi echo": servers.get("fastapi echo", "apps:fastapi_echo"),
        "fastapi depends": servers.get("fastapi depends", "apps:fastapi_depends_echo"),
        "fastapi route": servers.get("fastapi route", "apps:fastapi_route_echo"),
    }
    for s in STRATEGIES:
        running[s.REFUSAL_FLOOR] = servers.get(s.REFUSAL_FLOOR, f"{s.__name__}:raw_refusal")
    routes = {s.LABEL: paths.ECHO_ENDPOINTS[s.STRATEGY] for s in STRATEGIES}
    auth = tuple(AUTH)
    report: dict[str, Any] = {}

    # The noise floor: the same raw app in two processes, measured like every pair below.
    running["raw echo 2"] = servers.get("raw echo 2", "apps:raw_echo")
    group = [
        Subject("raw ASGI echo", "raw echo", "session", message=MESSAGE),
        Subject("raw ASGI echo, second process", "raw echo 2", "session", message=MESSAGE),
    ]
    report["noise floor"] = compare(group, running, settings.count, settings)

    # Allowed session: handshake with a credential, one echo, clean close.
    group = [Subject("raw ASGI echo", "raw echo", "session", message=MESSAGE)]
    group += [
        Subject(f"generated {label} route", "generated", "session", path, auth, MESSAGE)
        for label, path in routes.items()
    ]
    label, path = next(iter(routes.items()))
    group.append(
        Subject(
            f"generated {label} route, {NO_RATE_LIMIT}",
            NO_RATE_LIMIT,
            "session",
            path,
            auth,
            MESSAGE,
        )
    )
    # The same with the credential checked other ways (benchmarks/credential_variants.py).
    variants = credential_variants.variants(servers.stack)
    for variant, env, credential in variants:
        running[variant] = servers.get(variant, GENERATED, env={**GENERATED_ENV, **env})
        headers = (("Authorization", f"Bearer {credential}"),)
        subject = f"generated {label} route, {variant}"
        group.append(Subject(subject, variant, "session", path, headers, MESSAGE))
    report["allowed session"] = compare(group, running, settings.count, settings)
    report["credential variants"] = [variant for variant, _, _ in variants]

    # The same with the limits in a local Redis (one round trip each for the rate
    # and the lease, one for the release), when redis-server is installed. A group
    # of its own: its longer batches would stretch the rounds above.
    if shutil.which("redis-server"):
        redis = servers.stack.enter_context(RedisServer(Path(tempfile.mkdtemp())))
        env = {**GENERATED_ENV, "WS_LIMITS_STORAGE_URL": redis.url}
        running[IN_REDIS] = servers.get(IN_REDIS, GENERATED, env=env)
        in_memory = f"generated {label} route"
        group = [
            Subject("raw ASGI echo", "raw echo", "session", message=MESSAGE),
            Subject(in_memory, "generated", "session", path, auth, MESSAGE),
            Subject(f"{in_memory}, {IN_REDIS}", IN_REDIS, "session", path, auth, MESSAGE),
        ]
        report[IN_REDIS] = compare(group, running, settings.count, settings)

    # Refusal of a client without a credential, per strategy, next to its raw floor.
    for s in STRATEGIES:
        group = [
            Subject(s.REFUSAL_FLOOR, s.REFUSAL_FLOOR, "session", expected=s.REFUSAL),
            Subject(
                f"generated {s.LABEL} route",
                "generated",
                "session",
                routes[s.LABEL],
                expected=s.REFUSAL,
            ),
            Subject(
                f"generated {s.LABEL} route, {NO_RATE_LIMIT}",
                NO_RATE_LIMIT,
                "session",
                routes[s.LABEL],
                expected=s.REFUSAL,
            ),
        ]
        report[f"{s.LABEL} refusal"] = compare(group, running, settings.count, settings)

    # What FastAPI's dependency solving costs a WebSocket endpoint (no guard in these apps).
    group = [
        Subject("websocket_route + app.state", "fastapi route", "session", message=MESSAGE),
        Subject("@app.websocket", "fastapi echo", "session", message=MESSAGE),
        Subject("@app.websocket + Depends", "fastapi depends", "session", message=MESSAGE),
    ]
    report["FastAPI endpoint styles"] = compare(group, running, settings.count, settings)

    # Per message on an open connection: the echo loop, nothing else.
    group = [
        Subject("raw ASGI echo", "raw echo", "echo"),
        Subject("bare FastAPI echo", "fastapi echo", "echo"),
        *(
            Subject(f"generated {label} route", "generated", "echo", path, auth)
            for label, path in routes.items()
        ),
    ]
    report["echo message"] = compare_messages(group, running, settings)

    # Plain HTTP (GET /health) on the generated app: h11 (the launcher's) vs httptools.
    running["generated httptools"] = servers.get("generated httptools", GENERATED, "httptools")
    group = [
        Subject("h11", "generated", "http", "/health"),
        Subject("httptools", "generated httptools", "http", "/health"),
    ]
    report["GET /health"] = compare(group, running, settings.messages, settings)
    return report


def environment() -> dict[str, str]:
    packages = ["fastapi", "starlette", "uvicorn", "h11", "httptools", "wsproto", "uvloop"]
    packages += ["limits", "prometheus-client"]
    return {
        "machine": f"{platform.machine()}, {psutil.cpu_count()} CPUs, {platform.platform()}",
        "python": platform.python_version(),
        **{name: version(name) for name in packages},
    }


def raise_fd_limit() -> None:
    """The storm holds thousands of sockets; the servers inherit this limit."""
    _, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))


def measure(settings: Settings) -> dict[str, Any]:
    raise_fd_limit()
    started = time.perf_counter()
    with ExitStack() as stack:
        servers = Servers(stack)
        report = cpu_comparisons(servers, settings)
        stack.close()  # stop the long-running servers before the memory runs
        report.update(memory_and_storm(servers, settings))
    report["errors"] = servers.errors
    report["minutes"] = round((time.perf_counter() - started) / 60, 1)
    return report


def ratio(r: dict[str, float]) -> str:
    return f"{r['median']:.2f} ({r['q1']:.2f}-{r['q3']:.2f})"


def verdict(value: float, target: float) -> str:
    return f"≤ {target:.2f}: {'yes' if value <= target else 'NO'}"


def print_report(report: dict[str, Any], settings: Settings) -> None:
    print("Environment:", ", ".join(f"{k} {v}" for k, v in environment().items()))
    print("Run:", ", ".join(f"{k}={v}" for k, v in vars(settings).items()))
    print(f"Generated app settings: {GENERATED_ENV}; credential: {AUTH[0][0]} Bearer")
    print()
    print("Server CPU per operation (µs, median over rounds); ratio to the first app of its")
    print("operation: median of the per-round ratios (interquartile range).")
    print()
    print("| operation | app | µs / op | ratio | target |")
    print("| --- | --- | ---: | ---: | --- |")
    targets = {"allowed session": 1.30}
    targets.update({f"{s.LABEL} refusal": s.REFUSAL_TARGET for s in STRATEGIES})
    for name in ("allowed session", *(f"{s.LABEL} refusal" for s in STRATEGIES)):
        result = report[name]
        labels = list(result["us"])
        print(f"| {name} | {labels[0]} | {result['us'][labels[0]]:.0f} | 1.00 | |")
        for label in labels[1:]:
            r = result["ratios"][label]
            # The default configuration has a target; its variants are for comparison.
            target = verdict(r["median"], targets[name]) if label.endswith("route") else ""
            print(f"| {name} | {label} | {result['us'][label]:.0f} | {ratio(r)} | {target} |")
    for name in ("noise floor", IN_REDIS, "FastAPI endpoint styles", "echo message", "GET /health"):
        if name not in report:
            continue
        result = report[name]
        labels = list(result["us"])
        print(f"| {name} | {labels[0]} | {result['us'][labels[0]]:.1f} | 1.00 | |")
        for label in labels[1:]:
            r = result["ratios"][label]
            print(f"| {name} | {label} | {result['us'][label]:.1f} | {ratio(r)} | |")
    if IN_REDIS not in report:
        print("(redis-server is not installed: no rows with the limits in Redis)")
    styles = report["FastAPI endpoint styles"]["us"]
    print()
    print(
        "Depends on a WebSocket endpoint: "
        f"{styles['@app.websocket + Depends'] - styles['websocket_route + app.state']:.0f} µs "
        "per connection over websocket_route "
        f"({styles['@app.websocket'] - styles['websocket_route + app.state']:.0f} µs of it "
        "for @app.websocket without any Depends)."
    )
    http = report["GET /health"]["us"]
    print(
        f"GET /health capacity per core: h11 {1e6 / http['h11']:.0f}/s, "
        f"httptools {1e6 / http['httptools']:.0f}/s."
    )
    print()
    print(f"Held connections ({settings.held} on one worker, opened 100 at a time):")
    print()
    print("| app | KB / connection | ratio to FastAPI | target | seconds to open all | echoes |")
    print("| --- | ---: | ---: | --- | ---: | ---: |")
    for label, r in report["held"].items():
        target = verdict(r["ratio"]["median"], 1.05) if label.startswith("generated") else ""
        print(
            f"| {label} | {r['kb_per_connection']:.1f} | {ratio(r['ratio'])} | {target} | "
            f"{r['seconds']:.1f} | {r['echoes']} |"
        )
    print()
    print(f"Reconnect storm ({settings.storm} authenticated clients at once, one worker):")
    print()
    print("| app | admitted | seconds to admit all | time ratio | CPU µs / client | CPU ratio |")
    print("| --- | ---: | ---: | ---: | ---: | ---: |")
    for label, r in report["storm"].items():
        print(
            f"| {label} | {r['admitted']:.0f} | {r['seconds']:.2f} | {ratio(r['time_ratio'])} | "
            f"{r['cpu_us_per_connection']:.0f} | {ratio(r['cpu_ratio'])} |"
        )
    print()
    print(f"Took {report['minutes']} minutes.")
    if report["errors"]:
        print("\nserver errors:", report["errors"])


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="a smoke run: tiny batches")
    parser.add_argument("--rounds", type=int, help="rounds per comparison")
    parser.add_argument("--json", action="store_true", help="print the report as JSON")
    args = parser.parse_args()
    settings = QUICK if args.quick else FULL
    if args.rounds:
        settings = Settings(**{**vars(settings), "rounds": args.rounds})
    report = measure(settings)
    if args.json:
        print(json.dumps({**report, "environment": environment(), "settings": vars(settings)}))
    else:
        print_report(report, settings)
    return 1 if report["errors"] else 0


if __name__ == "__main__":
    sys.exit(main())
