"""What each part of the admission pipeline costs, measured in-process.

    python benchmarks/components.py            # a few seconds
    python benchmarks/components.py --json

No server, no sockets: each part is called in a loop and timed with the process
CPU clock (best of five runs). On a real server every figure comes out several
times larger (cold caches between connections); use it to see which part of
``handshake_cost.py``'s figures a feature takes, not as a figure of its own.
"""

import argparse
import json
import sys
import time
from collections.abc import Awaitable, Callable
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))
import credential_variants
from fastapi import FastAPI
from handshake_cost import GENERATED_ENV

from {{ cookiecutter.package_name }} import metrics
from {{ cookiecutter.package_name }}.admission import Admission
from {{ cookiecutter.package_name }}.auth import CredentialVerifier
from {{ cookiecutter.package_name }}.lifetime import (
    ConnectionLifetime,
)
from {{ cookiecutter.package_name }}.settings import Settings
from {{ cookiecutter.package_name }}.store import MemoryStore

from cases import SETTINGS_ENV
from credentials import TOKEN
from wire_client import run

STRATEGY = "benchmark"  # the strategy label of the metrics this script counts
HEADERS = [
    (b"host", b"127.0.0.1:8000"),
    (b"upgrade", b"websocket"),
    (b"connection", b"Upgrade"),
    (b"sec-websocket-key", b"dGhlIHNhbXBsZSBub25jZQ=="),
    (b"sec-websocket-version", b"13"),
]


def handshake(headers: list[tuple[bytes, bytes]]) -> dict:
    return {
        "type": "websocket",
        "path": "/ws/echo",
        "headers": HEADERS + headers,
        "query_string": b"",
        "client": ("127.0.0.1", 50000),
        "subprotocols": [],
    }


async def timed(call: Callable[[], Awaitable[object]], count: int) -> float:
    """µs per call: the best of five runs of ``count`` calls."""
    for _ in range(count // 10):
        await call()
    best = float("inf")
    for _ in range(5):
        started = time.process_time()
        for _ in range(count):
            await call()
        best = min(best, time.process_time() - started)
    return best / count * 1e6


async def measure(count: int) -> dict[str, float]:
    env = {**settings_from(SETTINGS_ENV), **settings_from(GENERATED_ENV)}
    settings = Settings(_env_file=None, **env)  # type: ignore[call-arg]
    store = MemoryStore()
    admission = Admission(settings, CredentialVerifier(settings), store)
    limits = admission._rate_limits  # the project's two limits, raised so they never fire
    allowed = handshake([(b"authorization", f"Bearer {TOKEN}".encode())])
    refused = handshake([])
    admitted = await admission.admit(allowed, STRATEGY)
    assert not hasattr(admitted, "status"), admitted  # admitted, not a Rejection

    async def admit_and_release() -> None:
        outcome = await admission.admit(allowed, STRATEGY)
        await admission.release(outcome)  # type: ignore[arg-type]

    async def lifetime() -> None:
        async with ConnectionLifetime(admission, admitted, allowed, noop_send):  # type: ignore[arg-type]
            pass

    async def count_and_observe() -> None:
        metrics.observe_handshake(STRATEGY, 0.0001)
        metrics.count_admission(STRATEGY)

    app = FastAPI()
    telemetry = getattr(app, "_native_telemetry", None)  # FastAPI 0.16x and later

    async def telemetry_check() -> None:
        if telemetry is not None:
            telemetry.enabled()

    parts = {
        "admission, allowed (whole pipeline + release)": await timed(admit_and_release, count),
        "admission, refused: no credential": await timed(
            lambda: admission.admit(refused, STRATEGY), count
        ),
        "handshake rate limit: one hit on two limits": await timed(
            lambda: store.hit(limits, "handshakes", "127.0.0.1"), count
        ),
        "credential check": await timed(lambda: admission.verifier.verify(TOKEN.encode()), count),
        "metrics: count + observe one admission": await timed(count_and_observe, count),
        "connection lifetime: enter + exit": await timed(lifetime, count),
        "FastAPI's OpenTelemetry check, per request": await timed(telemetry_check, count),
    }
    if credential_variants.EVERY_HANDSHAKE:  # a credential check that remembers tokens
        every = {**env, **settings_from(credential_variants.EVERY_HANDSHAKE)}
        verifier = CredentialVerifier(Settings(_env_file=None, **every))  # type: ignore[call-arg]
        parts["credential check, nothing remembered"] = await timed(
            lambda: verifier.verify(TOKEN.encode()), count
        )
    return parts


def settings_from(env: dict[str, str]) -> dict[str, str]:
    return {key.removeprefix("WS_").lower(): value for key, value in env.items()}


async def noop_send(message: dict) -> None:
    pass


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="fewer calls: a smoke run")
    parser.add_argument("--json", action="store_true", help="print the report as JSON")
    args = parser.parse_args()
    report = run(measure(500 if args.quick else 20_000))
    if args.json:
        print(json.dumps(report))
    else:
        print("| part | µs per call, in-process |")
        print("| --- | ---: |")
        for name, us in report.items():
            print(f"| {name} | {us:.1f} |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
