"""Flood the recommended server with refused and admitted handshakes; check that nothing leaks.

    python benchmarks/flood.py                       # 20,000 per guarded path, 100 at a time
    python benchmarks/flood.py --requests 2000 --json

Starts the ``python -m`` launcher on 127.0.0.1 (a free port, the test
credentials, the default connection cap, logging at INFO as the launcher runs it)
and sends, to every guarded echo path, handshakes that the admission pipeline
must refuse for each reason a client can provoke (no credential, a wrong one, a
foreign ``Origin``, a missing scope), handshakes to a path that does not exist,
and admitted sessions (one echo each). It reports what arrived per path and
reason, open file descriptors and RSS of the server before and after, the open
connection gauge of ``/metrics`` and ERROR lines in its log. Exits 1 when a
client got another answer than expected, descriptors did not return to the
baseline, RSS grew by 10 MB or more, a connection stayed counted as open (a
leaked lease would also refuse the last admitted sessions: the cap is 100), or
the server logged an error.
"""

import argparse
import json
import re
import sys
import tempfile
import time
from collections import Counter
from importlib import import_module
from pathlib import Path

import psutil

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))
from {{ cookiecutter.package_name }} import paths

from cases import ALLOWED_ORIGIN
from credentials import SECOND_TOKEN, TOKEN, WRONG_TOKEN
from live_server import LiveServer
from wire_client import MESSAGE, run, sessions

# The strategies this project has: one strategy_*.py module each.
BENCHMARKS = Path(__file__).resolve().parent
STRATEGIES = {
    module.STRATEGY: module
    for module in (import_module(path.stem) for path in BENCHMARKS.glob("strategy_*.py"))
}
RSS_LIMIT = 10 * 1024 * 1024
WARM_UP = 200  # handshakes per kind before the baseline: imports, caches and pools settle first
OPEN_GAUGE = re.compile(rb"^websocket_connections_open (\S+)$", re.MULTILINE)


def bearer(token: str) -> tuple[str, str]:
    return ("Authorization", f"Bearer {token}")


def answer(strategy: str, status: int) -> str:
    """What a client of this strategy's route is told for a refusal with this HTTP status."""
    return STRATEGIES[strategy].answer(status)


def kinds() -> list[tuple[str, str, list[tuple[str, str]], bytes | None, str]]:
    """(label, path, headers, message to echo, expected result) for every kind of handshake."""
    result = []
    for strategy, path in paths.ECHO_ENDPOINTS.items():
        admin = paths.ADMIN_ECHO_ENDPOINTS[strategy]
        result += [
            (f"{path} missing_token", path, [], None, answer(strategy, 401)),
            (f"{path} invalid_token", path, [bearer(WRONG_TOKEN)], None, answer(strategy, 403)),
            (
                f"{path} origin_not_allowed",
                path,
                [bearer(TOKEN), ("Origin", "https://evil.example")],
                None,
                answer(strategy, 403),
            ),
            (
                f"{admin} insufficient_scope",
                admin,
                [bearer(SECOND_TOKEN)],
                None,
                answer(strategy, 403),
            ),
            (
                f"{path} admitted",
                path,
                [bearer(TOKEN), ("Origin", ALLOWED_ORIGIN)],
                MESSAGE,
                "echoed",
            ),
        ]
    # With a valid credential: a guard in front of every path admits it, then nothing answers.
    unknown = ("/ws/no-such-path", [bearer(TOKEN)], None, "HTTP 404")
    result.append(("/ws/no-such-path not_found", *unknown))
    return result


def open_connections(server: LiveServer) -> float:
    status, body = server.get("/metrics")
    match = OPEN_GAUGE.search(body) if status == 200 else None
    return float(match.group(1)) if match else -1.0


def flood(requests: int, concurrency: int) -> dict[str, object]:
    report: dict[str, object] = {"requests_per_kind": requests, "concurrency": concurrency}
    with LiveServer(Path(tempfile.mkdtemp()), launcher=True) as server:
        process = psutil.Process(server.pid)
        host, port = server.host, server.port
        # Admitted sessions stay below the connection cap (100 per identity).
        admitted_concurrency = min(concurrency, 50)
        for _, path, headers, message, _ in kinds():
            run(sessions(host, port, path, headers, WARM_UP, admitted_concurrency, message))
        time.sleep(0.5)
        fds_before, rss_before = process.num_fds(), process.memory_info().rss
        for label, path, headers, message, expected in kinds():
            in_flight = admitted_concurrency if message else concurrency
            started = time.perf_counter()
            outcomes = run(sessions(host, port, path, headers, requests, in_flight, message))
            elapsed = time.perf_counter() - started
            seen = Counter(outcome.result for outcome in outcomes)
            report[label] = {
                "expected": expected,
                "seen": dict(seen),
                "unexpected": requests - seen[expected],
                "per_second": round(requests / elapsed),
            }
        time.sleep(1.0)  # let the server finish closing the last sockets
        report["fds_before"], report["fds_after"] = fds_before, process.num_fds()
        rss_after = process.memory_info().rss
        report["rss_before_mb"] = round(rss_before / 2**20, 1)
        report["rss_after_mb"] = round(rss_after / 2**20, 1)
        report["rss_growth_mb"] = round((rss_after - rss_before) / 2**20, 2)
        report["connections_open_after"] = open_connections(server)
    report["server_errors"] = server.error_lines()
    return report


def failures(report: dict[str, object]) -> list[str]:
    problems = [
        f"{label}: {result['unexpected']} unexpected answers {result['seen']}"
        for label, result in report.items()
        if isinstance(result, dict) and result["unexpected"]
    ]
    if report["fds_after"] > report["fds_before"]:  # type: ignore[operator]
        problems.append(f"file descriptors: {report['fds_before']} -> {report['fds_after']}")
    if report["rss_growth_mb"] * 2**20 >= RSS_LIMIT:  # type: ignore[operator]
        problems.append(f"RSS grew by {report['rss_growth_mb']} MB")
    if report["connections_open_after"] != 0:
        problems.append(f"websocket_connections_open is {report['connections_open_after']}")
    if report["server_errors"]:
        problems.append(f"server logged errors: {report['server_errors']}")
    return problems


def main_cli() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--requests", type=int, default=4000, help="per path and kind")
    parser.add_argument("--concurrency", type=int, default=100)
    parser.add_argument("--json", action="store_true", help="print the report as JSON")
    args = parser.parse_args()
    report = flood(args.requests, args.concurrency)
    problems = failures(report)
    if args.json:
        print(json.dumps({**report, "problems": problems}))
    else:
        for key, value in report.items():
            print(f"{key:>42}: {value}")
        print("OK: no leak, no unexpected answer" if not problems else "\n".join(problems))
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main_cli())
