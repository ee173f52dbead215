"""Flood the recommended server with refused and admitted handshakes; check that nothing leaks.

    python benchmarks/run.py --flood                # 4,000 per path and kind, 100 at a time
    python benchmarks/run.py --flood --quick --json

Started by ``run.py`` with the baked project's Python. Starts its ``python -m``
launcher on 127.0.0.1 (port 0, read back; credentials from its ``token``
command; the default connection cap; logging at INFO as the launcher runs it)
and sends, to every guarded echo path, handshakes that admission must refuse for
each reason a client can provoke (no credential, a wrong one, a foreign
``Origin``, a missing scope), handshakes to a path that does not exist, and
admitted sessions (one echo each). It reports what arrived per path and reason,
open file descriptors and RSS of the server before and after, the open
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
import time
from collections import Counter

import psutil

from measure import (
    ALLOWED_ORIGIN,
    PRE_ACCEPT,
    Project,
    Server,
    Strategy,
    credentials,
    load_run,
    strategies,
)
from wire_client import MESSAGE, run, sessions

RSS_LIMIT = 10 * 1024 * 1024
WARM_UP = 200  # handshakes per kind before the baseline: imports, caches and pools settle first
OPEN_GAUGE = re.compile(rb"^websocket_connections_open (\S+)$", re.MULTILINE)
# The tests' settings: the rate limit high enough never to fire, the default connection cap.
FLOOD_ENV = {
    "WS_ALLOWED_ORIGINS": ALLOWED_ORIGIN,
    "WS_MAX_MESSAGE_BYTES": "1024",
    "WS_HANDSHAKE_RATE_LIMIT": "100000/second",
    "WS_LIMITS_STORAGE_URL": "memory://",
}
Kind = tuple[str, str, list[tuple[str, str]], bytes | None, set[str]]


def bearer(token: str) -> tuple[str, str]:
    return ("Authorization", f"Bearer {token}")


def answer(strategy: Strategy, status: int) -> set[str]:
    """What a client of this strategy's route is told for a refusal with this HTTP status."""
    return {f"HTTP {status}"} if strategy.label == PRE_ACCEPT.label else {f"close {4000 + status}"}


def admin_route(route: str) -> str:
    """The route's twin that needs the "admin" scope: /ws/x/echo -> /ws/x/admin/echo."""
    return route.removesuffix("/echo") + "/admin/echo"


def kinds(rejection_strategy: str, token: str, second: str, wrong: str) -> list[Kind]:
    """(label, path, headers, message to echo, expected results) for every kind of handshake."""
    result: list[Kind] = []
    for strategy in strategies(rejection_strategy):
        path, admin = strategy.route, admin_route(strategy.route)
        foreign = [bearer(token), ("Origin", "https://evil.example")]
        result += [
            (f"{path} missing_token", path, [], None, answer(strategy, 401)),
            (f"{path} invalid_token", path, [bearer(wrong)], None, answer(strategy, 403)),
            (f"{path} origin_not_allowed", path, foreign, None, answer(strategy, 403)),
            (f"{admin} insufficient_scope", admin, [bearer(second)], None, answer(strategy, 403)),
            (
                f"{path} admitted",
                path,
                [bearer(token), ("Origin", ALLOWED_ORIGIN)],
                MESSAGE,
                {"echoed"},
            ),
        ]
    # With a valid credential: nothing answers at this path (refused as the strategy refuses).
    unknown = ("/ws/no-such-path", [bearer(token)], None, {"HTTP 404", "close 4404"})
    result.append(("/ws/no-such-path not_found", *unknown))
    return result


def open_connections(server: Server) -> float:
    status, body = server.get("/metrics")
    match = OPEN_GAUGE.search(body) if status == 200 else None
    return float(match.group(1)) if match else -1.0


def flood(
    project: Project, rejection_strategy: str, authentication: str, requests: int, concurrency: int
) -> dict[str, object]:
    report: dict[str, object] = {"requests_per_kind": requests, "concurrency": concurrency}
    creds = credentials(project, authentication)
    launcher = [project.python, "-m", project.package, "--host", "127.0.0.1", "--port", "0"]
    server = Server(launcher, {**FLOOD_ENV, **creds.env}).start()
    try:
        server.wait_until_ready()
        process = psutil.Process(server.pid)
        host, port = server.host, server.port
        every = kinds(rejection_strategy, creds.token, creds.second, creds.wrong)
        # Admitted sessions stay below the connection cap (100 per identity).
        admitted_concurrency = min(concurrency, 50)
        for _, path, headers, message, _ in every:
            run(sessions(host, port, path, headers, WARM_UP, admitted_concurrency, message))
        time.sleep(0.5)
        fds_before, rss_before = process.num_fds(), process.memory_info().rss
        for label, path, headers, message, expected in every:
            in_flight = admitted_concurrency if message else concurrency
            started = time.perf_counter()
            outcomes = run(sessions(host, port, path, headers, requests, in_flight, message))
            elapsed = time.perf_counter() - started
            seen = Counter(outcome.result for outcome in outcomes)
            report[label] = {
                "expected": sorted(expected),
                "seen": dict(seen),
                "unexpected": requests - sum(seen[result] for result in expected),
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
    finally:
        server.stop()
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


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--config", required=True, help="the run, as run.py writes it (JSON)")
    parser.add_argument("--quick", action="store_true", help="300 per path and kind, 50 at a time")
    parser.add_argument("--json", action="store_true", help="print the report as JSON")
    args = parser.parse_args()
    run_ = load_run(args.config, argparse.Namespace(quick=False, rounds=None))
    requests, concurrency = (300, 50) if args.quick else (4000, 100)
    report = flood(run_.new, run_.rejection_strategy, run_.authentication, requests, concurrency)
    problems = failures(report)
    if args.json:
        print(json.dumps({**report, "problems": problems}))
    else:
        for key, value in report.items():
            print(f"{key:>42}: {value}")
        print("OK: no leak, no unexpected answer" if not problems else "\n".join(problems))
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
