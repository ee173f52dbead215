"""Flood the recommended server with refused handshakes; check that nothing leaks.

    python benchmarks/flood.py                       # 20,000 per guarded path, 100 at a time
    python benchmarks/flood.py --requests 2000 --json

Starts ``python -m {{ cookiecutter.package_name }}`` on 127.0.0.1 (a free port, a throwaway
token), sends handshakes without a token to every guarded echo path, and
reports: what arrived (statuses, close codes), open file descriptors and RSS
of the server before and after, and ERROR lines in its log. Exits 1 when a
refusal was not the expected one, descriptors did not return to the baseline,
RSS grew by 10 MB or more, or the server logged an error.
"""

import argparse
import asyncio
import json
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path

import psutil

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))
from {{ cookiecutter.package_name }} import paths as endpoint_paths

from live_server import LiveServer
from wire_client import handshake_many

RSS_LIMIT = 10 * 1024 * 1024
WARM_UP = 200  # handshakes before the baseline: imports, caches and pools settle first


def guarded_paths() -> dict[str, str]:
    """Echo path -> the refusal it must produce for a client without a token."""
    refusal = {"pre_accept": "HTTP 401", "accept_then_close": "close 4401"}
    return {path: refusal[strategy] for strategy, path in endpoint_paths.ECHO_ENDPOINTS.items()}


def flood(requests: int, concurrency: int) -> dict[str, object]:
    report: dict[str, object] = {"requests_per_path": requests, "concurrency": concurrency}
    with LiveServer(Path(tempfile.mkdtemp()), launcher=True) as server:
        process = psutil.Process(server.pid)
        for path in guarded_paths():
            asyncio.run(handshake_many(server.host, server.port, path, [], WARM_UP, concurrency))
        time.sleep(0.5)
        fds_before, rss_before = process.num_fds(), process.memory_info().rss
        for path, expected in guarded_paths().items():
            started = time.perf_counter()
            outcomes = asyncio.run(
                handshake_many(server.host, server.port, path, [], requests, concurrency)
            )
            elapsed = time.perf_counter() - started
            seen = Counter(outcome.refusal for outcome in outcomes)
            report[path] = {
                "expected": expected,
                "seen": dict(seen),
                "unexpected": requests - seen[expected],
                "handshakes_per_second": round(requests / elapsed),
            }
        time.sleep(1.0)  # let the server finish closing the last sockets
        report["fds_before"], report["fds_after"] = fds_before, process.num_fds()
        report["rss_before_mb"] = round(rss_before / 2**20, 1)
        report["rss_after_mb"] = round(process.memory_info().rss / 2**20, 1)
        report["rss_growth_mb"] = round((process.memory_info().rss - rss_before) / 2**20, 2)
    report["server_errors"] = server.error_lines()
    return report


def failures(report: dict[str, object]) -> list[str]:
    problems = [
        f"{path}: {result['unexpected']} unexpected refusals {result['seen']}"
        for path, result in report.items()
        if isinstance(result, dict) and result["unexpected"]
    ]
    if report["fds_after"] > report["fds_before"]:  # type: ignore[operator]
        problems.append(f"file descriptors: {report['fds_before']} -> {report['fds_after']}")
    if report["rss_growth_mb"] * 2**20 >= RSS_LIMIT:  # type: ignore[operator]
        problems.append(f"RSS grew by {report['rss_growth_mb']} MB")
    if report["server_errors"]:
        problems.append(f"server logged errors: {report['server_errors']}")
    return problems


def main_cli() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--requests", type=int, default=20_000, help="per guarded path")
    parser.add_argument("--concurrency", type=int, default=100)
    parser.add_argument("--json", action="store_true", help="print the report as JSON")
    args = parser.parse_args()
    report = flood(args.requests, args.concurrency)
    problems = failures(report)
    if args.json:
        print(json.dumps({**report, "problems": problems}))
    else:
        for key, value in report.items():
            print(f"{key:>28}: {value}")
        print("OK: no leak, no unexpected refusal" if not problems else "\n".join(problems))
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main_cli())
