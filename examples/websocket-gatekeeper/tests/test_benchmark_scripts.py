"""The scripts in benchmarks/ keep working: tiny runs here, the real ones by hand."""

import json
import subprocess
import sys
from pathlib import Path

PROJECT = Path(__file__).resolve().parents[1]


def run_json(script: str, *args: str) -> dict:
    result = subprocess.run(
        [sys.executable, f"benchmarks/{script}", *args, "--json"],
        cwd=PROJECT, capture_output=True, text=True, timeout=300, check=False,
    )  # fmt: skip
    assert result.stdout, result.stderr
    report = json.loads(result.stdout)
    report["returncode"] = result.returncode
    return report


def test_flood_of_refusals_leaks_nothing() -> None:
    # The full run is 20,000 per path: python benchmarks/flood.py
    report = run_json("flood.py", "--requests", "1500", "--concurrency", "100")
    assert report["problems"] == [], report
    assert report["returncode"] == 0
    flooded = [key for key in report if key.startswith("/ws/")]
    assert flooded, report
    for path in flooded:
        assert sum(report[path]["seen"].values()) == 1500
        assert report[path]["unexpected"] == 0
    assert report["fds_after"] <= report["fds_before"]
    assert report["rss_growth_mb"] < 10


def test_handshake_cost_benchmark_reports_every_app() -> None:
    report = run_json("handshake_cost.py", "--handshakes", "100", "--rounds", "1")
    assert report["returncode"] == 0, report
    refusals = report["refusals"]
    assert "raw ASGI denial (baseline)" in refusals
    assert "FastAPI route send_denial_response" in refusals
    assert len(refusals) >= 3  # plus each strategy this project has
    assert all(r["cpu_us"] > 0 and r["per_second"] > 0 for r in refusals.values())
    assert report["errors"] == {}
