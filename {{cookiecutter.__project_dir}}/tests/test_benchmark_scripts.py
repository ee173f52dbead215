"""The scripts in benchmarks/ keep working: smoke runs here, the real ones by hand.

Only the shape of the reports is checked, never a timing: figures from a shared
test machine mean nothing (see docs/benchmarks.md for how they are measured).
"""

import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from {{ cookiecutter.package_name }} import paths

PROJECT = Path(__file__).resolve().parents[1]


def run_json(script: str, *args: str) -> dict:
    result = subprocess.run(
        [sys.executable, f"benchmarks/{script}", *args, "--json"],
        cwd=PROJECT, capture_output=True, text=True, timeout=240, check=False,
    )  # fmt: skip
    assert result.stdout, result.stderr
    report = json.loads(result.stdout)
    report["returncode"] = result.returncode
    return report


@pytest.mark.timeout(300)
def test_flood_of_refusals_leaks_nothing() -> None:
    # The full run is 4,000 per path and kind: python benchmarks/flood.py
    report = run_json("flood.py", "--requests", "300", "--concurrency", "50")
    assert report["problems"] == [], report
    assert report["returncode"] == 0
    flooded = {key: value for key, value in report.items() if key.startswith("/ws/")}
    for path in paths.ECHO_ENDPOINTS.values():
        assert f"{path} missing_token" in flooded
        assert f"{path} admitted" in flooded
    for result in flooded.values():
        assert sum(result["seen"].values()) == 300
        assert result["unexpected"] == 0
    assert report["fds_after"] <= report["fds_before"]
    assert report["rss_growth_mb"] < 10
    assert report["connections_open_after"] == 0


@pytest.mark.timeout(300)
def test_benchmark_reports_every_ratio() -> None:
    # The full run takes minutes: python benchmarks/handshake_cost.py
    report = run_json("handshake_cost.py", "--quick")
    assert report["returncode"] == 0, report
    assert report["errors"] == {}
    routes = [f"generated {strategy.replace('_', '-')} route" for strategy in paths.ECHO_ENDPOINTS]
    comparisons = ["noise floor", "allowed session", "FastAPI endpoint styles", "echo message"]
    comparisons.append("GET /health")
    comparisons += [f"{strategy.replace('_', '-')} refusal" for strategy in paths.ECHO_ENDPOINTS]
    for name in comparisons:
        result = report[name]
        assert all(us > 0 for us in result["us"].values()), name
        assert result["ratios"], name
        for ratio in result["ratios"].values():
            assert 0 < ratio["min"] <= ratio["median"] <= ratio["max"], name
    assert set(routes) <= set(report["allowed session"]["ratios"])
    if shutil.which("redis-server"):  # the limits in Redis, next to the same in memory
        (redis,) = [name for name in report if "Redis" in name]
        assert len(report[redis]["ratios"]) == 2
    for variant in report["credential variants"]:  # see benchmarks/credential_variants.py
        assert any(label.endswith(f", {variant}") for label in report["allowed session"]["ratios"])
    for route in routes:
        assert report["held"][route]["kb_per_connection"] > 0
        answered, sampled = report["held"][route]["echoes"].split("/")
        assert answered == sampled
        assert report["storm"][route]["admitted"] == report["settings"]["storm"]


def test_component_costs_are_measured() -> None:
    report = run_json("components.py", "--quick")
    assert report["returncode"] == 0
    assert len(report) > 5
    assert all(us > 0 for key, us in report.items() if key != "returncode")
