"""Measure baked projects: what the generated app costs the server, next to raw ASGI apps.

Started by ``run.py`` (which bakes the projects and builds their virtualenvs),
with the Python of the project under test: the reference apps and this client
run there, uvloop included. Reads the run's description (JSON) from the file
named by ``--config``.

Every app runs in its own uvicorn process on 127.0.0.1 with the stack the
generated ``python -m`` launcher uses (``--http h11 --ws wsproto``, its garbage
collector threshold: ``serve.py``) and ``--log-level warning`` for all of them,
so logging is in no figure. The generated app runs with the project's defaults
(rate limit, connection cap, metrics, leases), except the limits are raised so
they never fire for a benchmark client that connects from one address over and
over (``GENERATED_ENV``).

Method: server CPU time per operation, read from ``/proc/<pid>/task/*/schedstat``
(nanoseconds on the CPU, summed over the server's threads) before and after
each batch. The apps of a comparison run their batches in turn, in alternating
order (A, B, then B, A, ...); each round gives a ratio, and the report shows the
median of the per-round ratios and their interquartile range; a target new/old
is judged by the median's confidence interval (``ratios.py``). A raw-socket
client (``wire_client.py``) keeps the client's own cost low. A baseline project
(``run.py --baseline REV``) runs as one more subject in the same rounds, and
every ratio new/old is reported.

The generated project is used only through its public surface: the ASGI app
``<package>.main:app`` configured by ``WS_*`` variables, ``<package>.rejections``,
its route paths and its ``token`` command.
"""

import argparse
import asyncio
import json
import os
import platform
import resource
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections import Counter
from collections.abc import Coroutine, Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass
from importlib.metadata import version
from pathlib import Path
from typing import Any, NamedTuple

import psutil

from ratios import decided, interval, paired, verdict
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
PATH = "/ws/echo"  # the reference apps' echo route
MAX_MESSAGE_BYTES = 64 * 1024  # the project's default WS_MAX_MESSAGE_BYTES, for every app
ALLOWED_ORIGIN = "https://app.example.com"
JWT_SECRET = "benchmark-secret-for-hs256-0123456789abcdef-0123456789"
OTHER_SECRET = "another-secret-for-hs256-0123456789abcdef-0123456789"

# The project's defaults, except what would fire for a benchmark client: every
# connection comes from 127.0.0.1, and one identity opens thousands of them.
GENERATED_ENV = {
    "WS_ALLOWED_ORIGINS": ALLOWED_ORIGIN,
    # default "50/second;1200/minute": still two limits, checked on every handshake
    "WS_HANDSHAKE_RATE_LIMIT": "1000000/second;60000000/minute",
    "WS_MAX_CONNECTIONS_PER_IDENTITY": "1000000",  # default 100, still counted with leases
    # default "100/second;3000/minute" per connection: still checked on every message
    "WS_MESSAGE_RATE_LIMIT": "1000000/second;60000000/minute",
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
# The same app without the per-connection message rate: what that check costs a message.
NO_MESSAGE_RATE_ENV = {**GENERATED_ENV, "WS_MESSAGE_RATE_LIMIT": "off"}
NO_MESSAGE_RATE = "message rate off"
# jwt: without in-band refresh, what looking for auth.refresh costs a message.
NO_INBAND_REFRESH_ENV = {**GENERATED_ENV, "WS_INBAND_REFRESH": "false"}
NO_INBAND_REFRESH = "in-band refresh off"
IN_REDIS = "limits in Redis on 127.0.0.1"
ROUND_TRIP = "raw echo + Redis"  # the floor of one Redis round trip per session
EVERY_HANDSHAKE = {"WS_JWT_CACHE_SIZE": "0"}  # jwt: verify every token, remember nothing
NEW, OLD = "generated", "baseline"  # the project under test, the one it is compared with


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
# two processes) shows what is left.
FULL = Settings(
    count=300, rounds=40, concurrency=20, messages=1000, held=5000, storm=10000, resource_rounds=2
)
QUICK = Settings(
    count=20, rounds=2, concurrency=5, messages=40, held=200, storm=100, resource_rounds=1
)


@dataclass(frozen=True)
class Strategy:
    label: str  # as the report names it
    route: str  # the echo route of this strategy in the project
    refusal: str  # what a client without a credential receives
    floor: str  # the raw app that sends the same refusal
    floor_app: str
    target: float  # the aim for the generated route's refusal ratio to its floor


PRE_ACCEPT = Strategy(
    "pre-accept", "/ws/pre-accept/echo", "HTTP 401", "raw ASGI denial", "apps:raw_denial", 1.10
)
ACCEPT_THEN_CLOSE = Strategy(
    "accept-then-close",
    "/ws/accept-then-close/echo",
    "close 4401",
    "raw ASGI accept-send-close",
    "apps:raw_accept_close",
    1.30,
)


def strategies(rejection_strategy: str) -> list[Strategy]:
    """The project's strategies with their echo routes (a single one is at /ws/echo)."""
    if rejection_strategy == "both":
        return [PRE_ACCEPT, ACCEPT_THEN_CLOSE]
    chosen = PRE_ACCEPT if rejection_strategy == "pre_accept" else ACCEPT_THEN_CLOSE
    return [Strategy(**{**vars(chosen), "route": PATH})]


@dataclass(frozen=True)
class Project:
    """A baked project: its folder, the Python of its virtualenv, its package."""

    folder: str
    python: str
    package: str
    revision: str  # of the template it was baked from

    @property
    def app(self) -> str:
        return f"{self.package}.main:app"


@dataclass(frozen=True)
class Run:
    new: Project
    old: Project | None  # the baseline, when asked for
    rejection_strategy: str
    authentication: str
    settings: Settings
    new_env: dict[str, str]  # settings for the new project's servers only (run.py --env)


# -- credentials, from the project's own `token` command -------------------------------


class Credentials(NamedTuple):
    env: dict[str, str]  # the settings that make them valid
    token: str  # identity "alice", scope "admin"
    second: str  # identity "bob", no scopes
    wrong: str  # refused: invalid_token


def token_command(project: Project, env: dict[str, str], *args: str) -> str:
    done = subprocess.run(
        [project.python, "-m", project.package, "token", *args],
        env={**os.environ, **GENERATED_ENV, **env}, cwd=tempfile.gettempdir(),
        capture_output=True, text=True, check=True, timeout=60,
    )  # fmt: skip
    return done.stdout.strip()


def credentials(project: Project, authentication: str) -> Credentials:
    if authentication == "jwt":
        env = {"WS_JWT_SECRET": JWT_SECRET}
        ttl = str(24 * 3600)
        token = token_command(project, env, "--sub", "alice", "--scope", "admin", "--ttl", ttl)
        second = token_command(project, env, "--sub", "bob", "--ttl", ttl)
        other = {"WS_JWT_SECRET": OTHER_SECRET}
        wrong = token_command(project, other, "--sub", "alice", "--ttl", ttl)
        return Credentials(env, token, second, wrong)
    alice = token_command(project, {}, "--name", "alice", "--scope", "admin")
    bob = token_command(project, {}, "--name", "bob")
    env = {"WS_AUTH_TOKENS": f"{alice},{bob}"}
    return Credentials(env, alice.split(":")[1], bob.split(":")[1], "wrong-token-000000000000")


def bearer(token: str) -> tuple[tuple[str, str], ...]:
    return (("Authorization", f"Bearer {token}"),)


# -- servers ---------------------------------------------------------------------------


def cpu_ns(pid: int) -> int:
    """Nanoseconds the process has run on a CPU: schedstat's first field, summed over threads."""
    total = 0
    for task in Path(f"/proc/{pid}/task").iterdir():
        try:
            total += int((task / "schedstat").read_text(encoding="ascii").split()[0])
        except FileNotFoundError:
            continue  # a thread that just ended
    return total


def listening_port(pid: int) -> int | None:
    try:
        for connection in psutil.Process(pid).net_connections(kind="tcp"):
            if connection.status == psutil.CONN_LISTEN:
                return connection.laddr.port
    except psutil.Error:
        return None
    return None


def uvicorn(python: str, app: str, http: str = "h11") -> list[str]:
    """The command of every app of the comparisons: the launcher's stack, no logging."""
    return [
        python, str(BENCHMARKS / "serve.py"), app, "--host", "127.0.0.1", "--port", "0",
        "--http", http, "--ws", "wsproto", "--log-level", "warning",
        "--ws-max-size", str(MAX_MESSAGE_BYTES), "--app-dir", str(BENCHMARKS),
    ]  # fmt: skip


class Server:
    """One server process on 127.0.0.1; it binds port 0 and the port is read back."""

    host = "127.0.0.1"

    def __init__(self, command: list[str], env: dict[str, str]) -> None:
        self.workdir = Path(tempfile.mkdtemp(prefix="benchmark-"))  # the cwd: no .env is read
        self.command = command
        self.env = {**os.environ, **env}
        self.log_path = self.workdir / "uvicorn.log"
        self.process: subprocess.Popen[bytes] | None = None
        self.port = 0

    @property
    def pid(self) -> int:
        assert self.process is not None
        return self.process.pid

    def start(self) -> "Server":
        with self.log_path.open("wb") as log:
            self.process = subprocess.Popen(
                self.command, cwd=self.workdir, env=self.env, stdout=log, stderr=subprocess.STDOUT
            )
        return self

    def wait_until_ready(self, timeout: float = 60.0) -> "Server":
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            assert self.process is not None
            if self.process.poll() is not None:
                raise RuntimeError(f"{self.command} exited:\n{self.log_path.read_text()}")
            self.port = self.port or listening_port(self.pid) or 0
            if self.port and self.health() == 200:
                return self
            time.sleep(0.05)
        raise RuntimeError(f"{self.command} did not become ready:\n{self.log_path.read_text()}")

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        shutil.rmtree(self.workdir, ignore_errors=True)

    def get(self, path: str) -> tuple[int, bytes]:
        """A plain HTTP GET; (0, b"") when nothing answers."""
        try:
            url = f"http://{self.host}:{self.port}{path}"
            with urllib.request.urlopen(url, timeout=2) as response:
                return response.status, response.read()
        except OSError:
            return 0, b""

    def health(self) -> int:
        return self.get("/health")[0]

    def error_lines(self) -> list[str]:
        if not self.log_path.exists():
            return []
        log = self.log_path.read_text(errors="replace")
        lines = log.splitlines()
        return [line for line in lines if line.startswith(("ERROR", "CRITICAL", "Traceback"))]


@dataclass(frozen=True)
class ServerSpec:
    """What to start: the Python (project) and app, its settings, its HTTP parser."""

    python: str
    app: str
    env: tuple[tuple[str, str], ...]
    http: str = "h11"

    def server(self) -> Server:
        return Server(uvicorn(self.python, self.app, self.http), dict(self.env))


class Servers:
    """The uvicorn processes of one run, started together, stopped at the end."""

    def __init__(self, stack: ExitStack) -> None:
        self.stack = stack
        self.running: dict[str, Server] = {}
        self.errors: dict[str, list[str]] = {}

    def start(self, specs: dict[str, ServerSpec]) -> None:
        """Start all at once (they load in parallel), then wait for each."""
        started = {name: spec.server().start() for name, spec in specs.items()}
        for name, server in started.items():
            self.stack.callback(self.stopped, name, server)
        for name, server in started.items():
            self.running[name] = server.wait_until_ready()

    def stopped(self, name: str, server: Server) -> None:
        if errors := server.error_lines():
            self.errors.setdefault(name, []).extend(errors)
        server.stop()

    @contextmanager
    def fresh(self, name: str, spec: ServerSpec) -> Iterator[Server]:
        """A new process, for figures a previous run would skew (memory)."""
        server = spec.server().start()
        try:
            yield server.wait_until_ready()
        finally:
            self.stopped(name, server)


class Redis:
    """A redis-server on 127.0.0.1 for the "limits in Redis" group.

    redis-server cannot bind port 0 and report it, so it is told a random port
    and, if another server holds that one, started again on another.
    """

    def __init__(self, binary: str) -> None:
        self.binary = binary
        self.workdir = Path(tempfile.mkdtemp(prefix="benchmark-redis-"))
        self.process: subprocess.Popen[bytes] | None = None
        self.url = ""

    def __enter__(self) -> "Redis":
        for _ in range(20):
            port = int.from_bytes(os.urandom(2), "big") % 16000 + 16384
            log = self.workdir / f"redis-{port}.log"
            command = [
                self.binary, "--port", str(port), "--bind", "127.0.0.1",
                "--save", "", "--appendonly", "no", "--dir", str(self.workdir),
            ]  # fmt: skip
            with log.open("wb") as output:
                self.process = subprocess.Popen(command, stdout=output, stderr=subprocess.STDOUT)
            deadline = time.monotonic() + 10
            while time.monotonic() < deadline and self.process.poll() is None:
                if listening_port(self.process.pid) == port:
                    self.url = f"redis://127.0.0.1:{port}/0"
                    return self
                time.sleep(0.02)
            self.stop()
            if "address already in use" not in log.read_text(errors="replace").lower():
                raise RuntimeError(f"redis-server did not start: {log.read_text()}")
        raise RuntimeError("redis-server found no free port")

    def __exit__(self, *exc: object) -> None:
        self.stop()
        shutil.rmtree(self.workdir, ignore_errors=True)

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            self.process.wait(timeout=10)


@contextmanager
def jwks_provider(python: str) -> Iterator[dict[str, str]]:
    """``{"url", "token"}`` of a JWKS served by ``jwks_provider.py`` for the run."""
    script = str(BENCHMARKS / "jwks_provider.py")
    process = subprocess.Popen([python, script], stdout=subprocess.PIPE, text=True)
    try:
        assert process.stdout is not None
        yield json.loads(process.stdout.readline())
    finally:
        process.terminate()
        process.wait(timeout=10)


# -- measuring -------------------------------------------------------------------------


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


def work(subject: Subject, server: Server, count: int, settings: Settings) -> Coroutine:
    host, port = server.host, server.port
    if subject.kind == "http":
        return http_get_many(host, port, subject.path, count, 8)
    return sessions(
        host, port, subject.path, subject.headers, count, settings.concurrency, subject.message
    )


def batch(subject: Subject, server: Server, count: int, settings: Settings) -> float:
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
    group: list[Subject], servers: dict[str, Server], count: int, settings: Settings
) -> dict[str, Any]:
    """Batches of ``count`` operations of every subject in turn, for every round."""
    samples: dict[str, list[float]] = {subject.label: [] for subject in group}
    for subject in group:  # warm-up: imports, caches, pools, the allocator's arenas
        batch(subject, servers[subject.server], max(count // 4, 20), settings)
    for subject in in_turn(group, settings.rounds):
        samples[subject.label].append(batch(subject, servers[subject.server], count, settings))
    return summary(samples)


def compare_messages(
    group: list[Subject], servers: dict[str, Server], settings: Settings
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
    return {
        "samples": samples,
        "us": {label: statistics.median(values) for label, values in samples.items()},
        "ratios": {label: paired(samples[label], samples[labels[0]]) for label in labels[1:]},
    }


async def hold(server: Server, path: str, headers: tuple, total: int, concurrency: int) -> dict:
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
    spec: ServerSpec
    path: str
    headers: tuple[tuple[str, str], ...]


def resource_rounds(
    candidates: list[Candidate], servers: Servers, total: int, concurrency: int, rounds: int
) -> dict[str, list[dict]]:
    """``hold`` for each candidate in a fresh process, alternating the order."""
    samples: dict[str, list[dict]] = {candidate.label: [] for candidate in candidates}
    for round_number in range(rounds):
        order = candidates if round_number % 2 == 0 else candidates[::-1]
        for label, spec, path, headers in order:
            with servers.fresh(label, spec) as server:
                result = run(hold(server, path, headers, total, concurrency))
            if result["admitted"] != total or result["echoes_answered"] != result["echoes_sampled"]:
                raise RuntimeError(f"{label}: {result}")
            samples[label].append(result)
    return samples


class Context(NamedTuple):
    """What every measurement of a run needs."""

    run: Run
    specs: dict[str, ServerSpec]
    credentials: Credentials
    strategies: list[Strategy]
    rs256: str | None  # a token the JWKS provider signed (jwt projects)

    @property
    def projects(self) -> list[str]:
        """NEW, and OLD when there is a baseline: the generated apps measured side by side."""
        return [NEW, OLD] if self.run.old else [NEW]


def route_label(project: str, strategy: Strategy) -> str:
    return f"{project} {strategy.label} route"


def memory_and_storm(context: Context, servers: Servers) -> dict[str, Any]:
    settings, specs = context.run.settings, context.specs
    auth = bearer(context.credentials.token)
    generated = [
        Candidate(route_label(project, s), specs[project], s.route, auth)
        for s in context.strategies
        for project in context.projects
    ]
    report: dict[str, Any] = {}

    # Memory: N connections opened 100 at a time and held, on one worker.
    candidates = [
        Candidate("bare FastAPI echo", specs["fastapi echo"], PATH, ()),
        Candidate("raw ASGI echo", specs["raw echo"], PATH, ()),
        *generated,
    ]
    samples = resource_rounds(candidates, servers, settings.held, 100, settings.resource_rounds)
    report["held"] = {
        label: {
            "kb_per_connection": statistics.median(r["kb_per_connection"] for r in rounds),
            "seconds": statistics.median(r["seconds"] for r in rounds),
            "echoes": f"{sum(r['echoes_answered'] for r in rounds)}/"
            f"{sum(r['echoes_sampled'] for r in rounds)}",
            "ratio": paired(
                [r["kb_per_connection"] for r in rounds],
                [b["kb_per_connection"] for b in samples["bare FastAPI echo"]],
            ),
        }
        for label, rounds in samples.items()
    }
    if context.run.old:
        report["held new/old"] = {
            s.label: paired(
                [r["kb_per_connection"] for r in samples[route_label(NEW, s)]],
                [r["kb_per_connection"] for r in samples[route_label(OLD, s)]],
            )
            for s in context.strategies
        }

    # Reconnect storm: every client at once, as after a deploy.
    candidates = [
        Candidate("raw ASGI echo", specs["raw echo"], PATH, ()),
        *(c for c in generated if c.label.startswith(NEW)),
    ]
    if "every handshake" in specs:
        # The storm's clients share one token; after a real deploy each brings its
        # own, verified once: this is that cost, where tokens are remembered.
        first = context.strategies[0]
        name = f"{route_label(NEW, first)}, every handshake verified"
        candidates.append(Candidate(name, specs["every handshake"], first.route, auth))
    samples = resource_rounds(
        candidates, servers, settings.storm, settings.storm, settings.resource_rounds
    )
    baseline = samples["raw ASGI echo"]
    report["storm"] = {
        label: {
            "admitted": statistics.median(r["admitted"] for r in rounds),
            "seconds": statistics.median(r["seconds"] for r in rounds),
            "cpu_us_per_connection": statistics.median(r["cpu_us_per_connection"] for r in rounds),
            "time_ratio": paired([r["seconds"] for r in rounds], [b["seconds"] for b in baseline]),
            "cpu_ratio": paired(
                [r["cpu_us_per_connection"] for r in rounds],
                [b["cpu_us_per_connection"] for b in baseline],
            ),
        }
        for label, rounds in samples.items()
    }
    return report


def server_specs(
    run_: Run, creds: Credentials, stack: ExitStack
) -> tuple[dict[str, ServerSpec], str | None]:
    """Every app of the run, by name (reference apps in the new project's Python), and
    an RS256 token of the run's JWKS provider (jwt projects)."""
    new = run_.new

    def generated(project: Project, env: dict[str, str], http: str = "h11") -> ServerSpec:
        own = run_.new_env if project is new else {}
        full = {**GENERATED_ENV, **creds.env, **own, **env}
        return ServerSpec(project.python, project.app, tuple(full.items()), http)

    reference_env = (("BENCHMARK_PACKAGE", new.package),)
    specs = {
        name: ServerSpec(new.python, app, reference_env)
        for name, app in {
            "raw echo": "apps:raw_echo",
            "raw echo 2": "apps:raw_echo",
            "fastapi echo": "apps:fastapi_echo",
            "fastapi depends": "apps:fastapi_depends_echo",
            "fastapi route": "apps:fastapi_route_echo",
            **{s.floor: s.floor_app for s in strategies(run_.rejection_strategy)},
        }.items()
    }
    specs[NEW] = generated(new, {})
    specs[NO_RATE_LIMIT] = generated(new, NO_RATE_LIMIT_ENV)
    specs[NO_MESSAGE_RATE] = generated(new, NO_MESSAGE_RATE_ENV)
    specs["generated httptools"] = generated(new, {}, "httptools")
    if run_.old:
        specs[OLD] = generated(run_.old, {})
    rs256 = None
    if run_.authentication == "jwt":
        provider = stack.enter_context(jwks_provider(new.python))
        jwks = {"WS_JWT_SECRET": "", "WS_JWKS_URL": provider["url"], "NO_PROXY": "127.0.0.1"}
        specs["every handshake"] = generated(new, EVERY_HANDSHAKE)
        specs[NO_INBAND_REFRESH] = generated(new, NO_INBAND_REFRESH_ENV)
        specs["RS256 from a JWKS (keys cached)"] = generated(new, jwks)
        specs["RS256 from a JWKS, every handshake verified"] = generated(
            new, {**jwks, **EVERY_HANDSHAKE}
        )
        rs256 = provider["token"]
    if redis_server := shutil.which("redis-server"):
        redis = stack.enter_context(Redis(redis_server))
        specs[IN_REDIS] = generated(new, {"WS_LIMITS_STORAGE_URL": redis.url})
        redis_env = (*reference_env, ("BENCHMARK_REDIS_URL", redis.url))
        specs[ROUND_TRIP] = ServerSpec(new.python, "apps:raw_echo_redis", redis_env)
    return specs, rs256


def credential_variants(context: Context) -> list[tuple[str, str, str]]:
    """(label, server name, token) of the other ways the allowed session is measured (jwt)."""
    if context.rs256 is None:
        return []
    return [
        ("HS256, every handshake verified", "every handshake", context.credentials.token),
        ("RS256 from a JWKS (keys cached)", "RS256 from a JWKS (keys cached)", context.rs256),
        (
            "RS256 from a JWKS, every handshake verified",
            "RS256 from a JWKS, every handshake verified",
            context.rs256,
        ),
    ]


def cpu_comparisons(context: Context, servers: Servers) -> dict[str, Any]:
    settings = context.run.settings
    servers.start(context.specs)
    running = servers.running
    auth = bearer(context.credentials.token)
    report: dict[str, Any] = {}

    # The noise floor: the same raw app in two processes, measured like every pair below.
    group = [
        Subject("raw ASGI echo", "raw echo", "session", message=MESSAGE),
        Subject("raw ASGI echo, second process", "raw echo 2", "session", message=MESSAGE),
    ]
    report["noise floor"] = compare(group, running, settings.count, settings)

    # Allowed session: handshake with a credential, one echo, clean close.
    group = [Subject("raw ASGI echo", "raw echo", "session", message=MESSAGE)]
    group += [
        Subject(route_label(project, s), project, "session", s.route, auth, MESSAGE)
        for s in context.strategies
        for project in context.projects
    ]
    first = context.strategies[0]
    first_route = route_label(NEW, first)
    group.append(
        Subject(
            f"{first_route}, {NO_RATE_LIMIT}", NO_RATE_LIMIT, "session", first.route, auth, MESSAGE
        )
    )
    # The same with the credential checked other ways (jwt projects).
    variants = credential_variants(context)
    for label, name, token in variants:
        subject = f"{first_route}, {label}"
        group.append(Subject(subject, name, "session", first.route, bearer(token), MESSAGE))
    report["allowed session"] = compare(group, running, settings.count, settings)
    report["credential variants"] = [label for label, _, _ in variants]

    # The same with the limits in a local Redis (one round trip for the rate and
    # the lease; releases batched), next to the raw echo asking Redis once per
    # session through redis-py: the floor of one round trip. When redis-server is
    # installed; a group of its own: its longer batches would stretch the rounds above.
    if IN_REDIS in running:
        group = [
            Subject("raw ASGI echo", "raw echo", "session", message=MESSAGE),
            Subject(
                "raw ASGI echo, one redis-py round trip", ROUND_TRIP, "session", message=MESSAGE
            ),
            Subject(first_route, NEW, "session", first.route, auth, MESSAGE),
            Subject(f"{first_route}, {IN_REDIS}", IN_REDIS, "session", first.route, auth, MESSAGE),
        ]
        report[IN_REDIS] = compare(group, running, settings.count, settings)

    # Refusal of a client without a credential, per strategy, next to its raw floor.
    for s in context.strategies:
        group = [Subject(s.floor, s.floor, "session", expected=s.refusal)]
        group += [
            Subject(route_label(project, s), project, "session", s.route, expected=s.refusal)
            for project in context.projects
        ]
        group.append(
            Subject(
                f"{route_label(NEW, s)}, {NO_RATE_LIMIT}",
                NO_RATE_LIMIT,
                "session",
                s.route,
                expected=s.refusal,
            )
        )
        report[f"{s.label} refusal"] = compare(group, running, settings.count, settings)

    # What FastAPI's dependency solving costs a WebSocket endpoint (no guard in these apps).
    group = [
        Subject("websocket_route + app.state", "fastapi route", "session", message=MESSAGE),
        Subject("@app.websocket", "fastapi echo", "session", message=MESSAGE),
        Subject("@app.websocket + Depends", "fastapi depends", "session", message=MESSAGE),
    ]
    report["FastAPI endpoint styles"] = compare(group, running, settings.count, settings)

    # Per message on an open connection: the echo loop, nothing else; and what the
    # message-rate check (and, jwt, looking for in-band refresh) costs each message.
    without = [off for off in (NO_MESSAGE_RATE, NO_INBAND_REFRESH) if off in context.specs]
    group = [
        Subject("raw ASGI echo", "raw echo", "echo"),
        Subject("bare FastAPI echo", "fastapi echo", "echo"),
        *(Subject(route_label(NEW, s), NEW, "echo", s.route, auth) for s in context.strategies),
        *(
            Subject(f"{route_label(NEW, s)}, {off}", off, "echo", s.route, auth)
            for off in without
            for s in context.strategies
        ),
    ]
    report["echo message"] = compare_messages(group, running, settings)

    # Plain HTTP (GET /health) on the generated app: h11 (the launcher's) vs httptools.
    group = [
        Subject("h11", NEW, "http", "/health"),
        Subject("httptools", "generated httptools", "http", "/health"),
    ]
    report["GET /health"] = compare(group, running, settings.messages, settings)
    return report


def new_over_old(report: dict[str, Any], context: Context) -> dict[str, dict[str, float]]:
    """Every ratio new/old from the paired rounds: refusals, allowed sessions, memory."""
    ratios = {}
    for s in context.strategies:
        new, old = route_label(NEW, s), route_label(OLD, s)
        for name, kind in ((f"{s.label} refusal", "refusal"), ("allowed session", "allowed")):
            samples = report[name]["samples"]
            ratios[f"{s.label} {kind}"] = paired(samples[new], samples[old])
        ratios[f"{s.label} held connection memory"] = report["held new/old"][s.label]
    return ratios


def environment(run_: Run) -> dict[str, str]:
    packages = ["fastapi", "starlette", "uvicorn", "h11", "httptools", "wsproto", "uvloop"]
    packages += ["limits", "prometheus-client"]
    return {
        "machine": f"{platform.machine()}, {psutil.cpu_count()} CPUs, {platform.platform()}",
        "python": platform.python_version(),
        "project": f"rejection_strategy={run_.rejection_strategy} "
        f"authentication={run_.authentication}",
        **{name: version(name) for name in packages},
    }


def raise_fd_limit() -> None:
    """The storm holds thousands of sockets; the servers inherit this limit."""
    _, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))


def measure(run_: Run) -> dict[str, Any]:
    raise_fd_limit()
    started = time.perf_counter()
    creds = credentials(run_.new, run_.authentication)
    with ExitStack() as outer:
        specs, rs256 = server_specs(run_, creds, outer)
        context = Context(run_, specs, creds, strategies(run_.rejection_strategy), rs256)
        with ExitStack() as stack:
            servers = Servers(stack)
            report = cpu_comparisons(context, servers)
        errors = servers.errors  # the long-running servers are stopped before the memory runs
        servers = Servers(outer)
        report.update(memory_and_storm(context, servers))
        errors.update(servers.errors)
    if run_.old:
        report["new/old"] = new_over_old(report, context)
    report["errors"] = errors
    report["minutes"] = round((time.perf_counter() - started) / 60, 1)
    return report


# -- the report ------------------------------------------------------------------------


def ratio(r: dict[str, float]) -> str:
    return f"{r['median']:.2f} ({r['q1']:.2f}-{r['q3']:.2f})"


def print_report(report: dict[str, Any], run_: Run) -> None:
    settings = run_.settings
    context_strategies = strategies(run_.rejection_strategy)
    print("Environment:", ", ".join(f"{k} {v}" for k, v in environment(run_).items()))
    print("Run:", ", ".join(f"{k}={v}" for k, v in vars(settings).items()))
    print(f"Generated app settings: {GENERATED_ENV}; credential: Authorization: Bearer")
    print(f"Template: {NEW} = {run_.new.revision}", end="")
    print(f", {OLD} = {run_.old.revision}" if run_.old else "")
    if run_.new_env:
        own = " ".join(f"{name}={value}" for name, value in run_.new_env.items())
        print(f"Settings of {NEW} only: {own}")
    print()
    print("Server CPU per operation (µs, median over rounds); ratio to the first app of its")
    print("operation: median of the per-round ratios (interquartile range).")
    print()
    print("| operation | app | µs / op | ratio | target |")
    print("| --- | --- | ---: | ---: | --- |")
    targets = {"allowed session": 1.30}
    targets.update({f"{s.label} refusal": s.target for s in context_strategies})
    for name in ("allowed session", *(f"{s.label} refusal" for s in context_strategies)):
        result = report[name]
        labels = list(result["us"])
        print(f"| {name} | {labels[0]} | {result['us'][labels[0]]:.0f} | 1.00 | |")
        for label in labels[1:]:
            r = result["ratios"][label]
            # The default configuration has a target; its variants are for comparison.
            mark = label.endswith("route") and label.startswith(NEW)
            target = verdict(r["median"], targets[name]) if mark else ""
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
        target = verdict(r["ratio"]["median"], 1.05) if label.startswith(NEW) else ""
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
    if "new/old" in report:
        print()
        print("This project against the baseline, in the same rounds (new / old):")
        print()
        print("Median of the per-round ratios (interquartile range), the median's confidence")
        print("interval, and the target judged by that interval.")
        print()
        print("| measure | new / old | confidence interval | target |")
        print("| --- | ---: | ---: | --- |")
        for name, r in report["new/old"].items():
            print(f"| {name} | {ratio(r)} | {interval(r)} | {decided(r, 1.03)} |")
    print()
    print(f"Took {report['minutes']} minutes.")
    if report["errors"]:
        print("\nserver errors:", report["errors"])


def load_run(path: str, args: argparse.Namespace) -> Run:
    config = json.loads(Path(path).read_text())
    settings = QUICK if args.quick else FULL
    if args.rounds:
        settings = Settings(**{**vars(settings), "rounds": args.rounds})
    return Run(
        new=Project(**config["new"]),
        old=Project(**config["old"]) if config.get("old") else None,
        rejection_strategy=config["rejection_strategy"],
        authentication=config["authentication"],
        settings=settings,
        new_env=config.get("new_env", {}),
    )


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--config", required=True, help="the run, as run.py writes it (JSON)")
    parser.add_argument("--quick", action="store_true", help="a smoke run: tiny batches")
    parser.add_argument("--rounds", type=int, help="rounds per comparison")
    parser.add_argument("--json", action="store_true", help="print the report as JSON")
    args = parser.parse_args()
    run_ = load_run(args.config, args)
    report = measure(run_)
    if args.json:
        output = {
            **report,
            "environment": environment(run_),
            "settings": vars(run_.settings),
            "new_env": run_.new_env,
        }
        print(json.dumps(output))
    else:
        print_report(report, run_)
    return 1 if report["errors"] else 0


if __name__ == "__main__":
    sys.exit(main())
