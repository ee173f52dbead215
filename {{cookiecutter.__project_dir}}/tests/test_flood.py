"""A bounded flood of refused handshakes (the full 20,000 run: benchmarks/flood.py)."""

import json
import subprocess
import sys
from pathlib import Path

PROJECT = Path(__file__).resolve().parents[1]


def test_flood_of_refusals_leaks_nothing() -> None:
    result = subprocess.run(
        [sys.executable, "benchmarks/flood.py", "--requests", "1500", "--concurrency", "100",
         "--json"],
        cwd=PROJECT, capture_output=True, text=True, timeout=300, check=False,
    )  # fmt: skip
    report = json.loads(result.stdout)
    print(report)
    assert report["problems"] == [], report
    flooded = [key for key in report if key.startswith("/ws/")]
    assert flooded, report
    for path in flooded:
        assert sum(report[path]["seen"].values()) == 1500
    assert result.returncode == 0, result.stderr
    assert report["fds_after"] <= report["fds_before"]
    assert report["rss_growth_mb"] < 10
