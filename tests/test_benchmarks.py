"""benchmarks/ keeps working: smoke runs on a freshly baked project, the real runs by hand.

Only the shape of the reports is checked, never a timing: figures from a shared
test machine mean nothing (benchmarks/README.md says how they are measured).
"""

import asyncio
import json
import math
import random
import shutil
import subprocess
import sys
from pathlib import Path

from helpers import TEMPLATE, clean_env

RUN = TEMPLATE / "benchmarks" / "run.py"
ROUTES = ["pre-accept", "accept-then-close"]  # the default project has both strategies


def run_json(tmp_path: Path, *args: str) -> dict:
    done = subprocess.run(
        [sys.executable, str(RUN), *args, "--json", "--workdir", str(tmp_path / "work")],
        cwd=TEMPLATE, env=clean_env(), capture_output=True, text=True, timeout=600, check=False,
    )  # fmt: skip
    assert done.stdout, done.stderr
    report = json.loads(done.stdout)
    report["returncode"] = done.returncode
    return report


def test_benchmark_reports_every_ratio_against_a_baseline(tmp_path: Path) -> None:
    # The full run takes minutes: python benchmarks/run.py --baseline <revision>
    # -e: a setting of the new project's servers only (here one every server accepts).
    setting = ("-e", "WS_MAX_CONNECTION_SECONDS=off")
    report = run_json(tmp_path, "--quick", "--baseline", "HEAD", *setting)
    assert report["returncode"] == 0, report
    assert report["errors"] == {}
    assert report["new_env"] == {"WS_MAX_CONNECTION_SECONDS": "off"}
    comparisons = ["noise floor", "allowed session", "FastAPI endpoint styles", "echo message"]
    comparisons += ["GET /health", *(f"{route} refusal" for route in ROUTES)]
    for name in comparisons:
        result = report[name]
        assert all(us > 0 for us in result["us"].values()), name
        assert result["ratios"], name
        for ratio in result["ratios"].values():
            assert 0 < ratio["min"] <= ratio["median"] <= ratio["max"], name
    for route in ROUTES:
        for project in ("generated", "baseline"):
            label = f"{project} {route} route"
            assert label in report["allowed session"]["ratios"]
            assert label in report[f"{route} refusal"]["ratios"]
            assert report["held"][label]["kb_per_connection"] > 0
            answered, sampled = report["held"][label]["echoes"].split("/")
            assert answered == sampled
        storm = report["storm"][f"generated {route} route"]
        assert storm["admitted"] == report["settings"]["storm"]
        for measure in ("refusal", "allowed", "held connection memory"):
            assert math.isfinite(report["new/old"][f"{route} {measure}"]["median"])
    if shutil.which("redis-server"):  # the limits in Redis, next to the same in memory
        in_redis = report["limits in Redis on 127.0.0.1"]["ratios"]
        assert len(in_redis) == 3
        assert "raw ASGI echo, one redis-py round trip" in in_redis  # the floor of a round trip


def test_flood_of_refusals_leaks_nothing(tmp_path: Path) -> None:
    # The full run is 4,000 per path and kind: python benchmarks/run.py --flood
    report = run_json(tmp_path, "--flood", "--quick")
    assert report["problems"] == [], report
    assert report["returncode"] == 0
    flooded = {key: value for key, value in report.items() if key.startswith("/ws/")}
    for route in ROUTES:
        assert f"/ws/{route}/echo missing_token" in flooded
        assert f"/ws/{route}/admin/echo insufficient_scope" in flooded
        assert f"/ws/{route}/echo admitted" in flooded
    for result in flooded.values():
        assert sum(result["seen"].values()) == 300
        assert result["unexpected"] == 0
    assert report["fds_after"] <= report["fds_before"]
    assert report["connections_open_after"] == 0


def test_every_benchmarked_server_collects_garbage_as_the_launcher_does() -> None:
    launcher = next((TEMPLATE / "{{cookiecutter.project_slug}}" / "src").glob("*/__main__.py"))
    sys.path.insert(0, str(TEMPLATE / "benchmarks"))
    try:
        import serve  # benchmarks/ is not a package
    finally:
        sys.path.remove(str(TEMPLATE / "benchmarks"))
    assert f"GC_THRESHOLD = {serve.GC_THRESHOLD:_}\n" in launcher.read_text()


def test_the_wire_client_answers_a_server_ping_and_reads_on() -> None:
    # uvicorn pings every connection every 20 s: a long run's held connections
    # must answer (else they are dropped) and must not count the ping as an echo.
    sys.path.insert(0, str(TEMPLATE / "benchmarks"))
    try:
        import wire_client  # benchmarks/ is not a package
    finally:
        sys.path.remove(str(TEMPLATE / "benchmarks"))

    class Writer:
        def __init__(self) -> None:
            self.sent: list[bytes] = []

        def write(self, data: bytes) -> None:
            self.sent.append(data)

    async def read() -> tuple[tuple[int, bytes], list[bytes]]:
        reader, writer = asyncio.StreamReader(), Writer()
        # Server frames are not masked: FIN + opcode, then the length.
        reader.feed_data(b"\x89\x04beat" + b"\x8a\x00" + b"\x81\x04ping")
        return await wire_client.read_message(reader, writer), writer.sent  # type: ignore[arg-type]

    message, sent = asyncio.run(read())
    assert message == (0x1, b"ping")
    assert len(sent) == 1
    assert sent[0][0] == 0x8A  # a pong, masked as a client's frame
    mask, payload = sent[0][2:6], sent[0][6:]
    assert bytes(b ^ mask[i % 4] for i, b in enumerate(payload)) == b"beat"


def test_the_median_interval_holds_the_median_as_often_as_it_says() -> None:
    # Decides whether a ratio is under a target such as 1.03: too narrow and a
    # run "meets" it by chance, too wide and no run ever decides.
    sys.path.insert(0, str(TEMPLATE / "benchmarks"))
    try:
        import ratios  # benchmarks/ is not a package
    finally:
        sys.path.remove(str(TEMPLATE / "benchmarks"))
    rng = random.Random(3)  # a repeatable sequence
    assert ratios.median_interval([1.0, 2.0]) == (1.0, 2.0, 0.5)  # too few: the extremes
    for rounds in (10, 40, 80):
        trials, held = 3000, 0
        for _ in range(trials):
            # Skewed, as per-round ratios are; the true median is 1.0.
            values = [math.exp(rng.gauss(0, 0.05)) ** 3 for _ in range(rounds)]
            low, high, confidence = ratios.median_interval(values)
            held += low <= 1.0 <= high
        assert confidence >= 0.95
        assert abs(held / trials - confidence) < 0.02, (rounds, held / trials, confidence)
    # The ranks of the sign test's tables: the narrowest interval with 95 %.
    for rounds, (low_rank, high_rank) in ((10, (2, 9)), (40, (14, 27)), (80, (31, 50))):
        low, high, _ = ratios.median_interval([float(rank) for rank in range(1, rounds + 1)])
        assert (low, high) == (low_rank, high_rank)
    r = ratios.spread([1.00, 1.01, 1.01, 1.02, 1.02, 1.04, 1.04, 1.05, 1.05])
    assert ratios.decided(r, 1.03) == "≤ 1.03: undecided"
    assert ratios.decided(ratios.spread([1.0] * 9), 1.03) == "≤ 1.03: yes"
    assert ratios.decided(ratios.spread([1.1] * 9), 1.03) == "≤ 1.03: NO"
    few = ratios.spread([1.0, 1.02])
    assert ratios.decided(few, 1.03) == "≤ 1.03: yes (median only: too few rounds)"
