"""``GET /metrics``: what a refusal, an admission and an open connection count, in one
process (TestClient) and under the launcher with ``--workers 2``, where every worker's
numbers must add up whichever worker answers the scrape; and kept private behind
deploy/nginx.conf."""

import http.client
import json
import os
import signal
import socket
import sys
import time
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager, suppress
from pathlib import Path
from typing import Any

import psutil
import pytest
from fastapi.testclient import TestClient
from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest
from prometheus_client.parser import text_string_to_metric_families
from starlette.testclient import WebSocketDenialResponse
from starlette.websockets import WebSocketDisconnect
from websockets.exceptions import ConnectionClosed, InvalidStatus
from websockets.sync.client import ClientConnection, connect

from websocket_gatekeeper import __main__ as launcher
from websocket_gatekeeper import metrics
from websocket_gatekeeper.metrics import LocalCounts

from cases import BEARER, ECHO_ENDPOINTS
from live_server import PACKAGE, LiveServer
from nginx_proxy import NginxProxy, find_nginx

Samples = dict[tuple[str, tuple[tuple[str, str], ...]], float]


def parse(text: str) -> Samples:
    """Every sample, keyed by name and sorted labels."""
    return {
        (sample.name, tuple(sorted(sample.labels.items()))): sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
    }


def value(samples: Samples, name: str, **labels: str) -> float:
    return samples.get((name, tuple(sorted(labels.items()))), 0.0)


def refusals(samples: Samples, strategy: str, code: str) -> float:
    return value(samples, "websocket_refusals_total", strategy=strategy, code=code)


def admissions(samples: Samples, strategy: str) -> float:
    return value(samples, "websocket_admissions_total", strategy=strategy)


def open_connections(samples: Samples) -> float:
    return value(samples, "websocket_connections_open")


def handshakes_timed(samples: Samples, strategy: str) -> float:
    return value(samples, "websocket_handshake_duration_seconds_count", strategy=strategy)


# -- one process ---------------------------------------------------------------------------


def scrape(client: TestClient) -> Samples:
    response = client.get("/metrics")
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/plain; version=0.0.4")
    return parse(response.text)


def refuse(client: TestClient, url: str) -> tuple[int, str]:
    """A handshake without a credential: (status, code) of its refusal, however delivered."""
    try:
        with client.websocket_connect(url) as ws:
            code = ws.receive_json()["error"]
            with pytest.raises(WebSocketDisconnect) as closed:
                ws.receive_text()
    except WebSocketDenialResponse as denial:
        return denial.status_code, denial.json()["code"]
    return closed.value.code - 4000, code


def test_refusals_admissions_and_handshake_time_are_counted(client: TestClient) -> None:
    before = scrape(client)  # the registry is shared by every test in this process: compare
    for url in ECHO_ENDPOINTS.values():
        for _ in range(3):
            assert refuse(client, url) == (401, "missing_token")
        with client.websocket_connect(url, headers=dict(BEARER)) as ws:
            ws.send_text("counted")
            assert ws.receive_text() == "counted"
    after = scrape(client)
    for strategy in ECHO_ENDPOINTS:
        code = "missing_token"
        assert refusals(after, strategy, code) - refusals(before, strategy, code) == 3
        assert admissions(after, strategy) - admissions(before, strategy) == 1
        assert handshakes_timed(after, strategy) - handshakes_timed(before, strategy) == 4


def test_open_connections_go_up_and_back_down(client: TestClient) -> None:
    before = open_connections(scrape(client))
    with ExitStack() as stack:
        for url in ECHO_ENDPOINTS.values():
            for _ in range(2):
                ws = stack.enter_context(client.websocket_connect(url, headers=dict(BEARER)))
                ws.send_text("held")
                assert ws.receive_text() == "held"
        now = open_connections(scrape(client))
        assert now - before == 2 * len(ECHO_ENDPOINTS)
    assert open_connections(scrape(client)) == before


def test_counted_in_one_process_as_prometheus_clients_own_metrics_count() -> None:
    # LocalCounts stands in for prometheus_client's metrics in one process: fed the
    # same events, both must expose the same samples (bucket bounds included).
    local, registry = LocalCounts(), CollectorRegistry()
    refusals = Counter(*metrics.REFUSALS, ["strategy", "code"], registry=registry)
    admissions = Counter(*metrics.ADMISSIONS, ["strategy"], registry=registry)
    opened = Gauge(*metrics.CONNECTIONS_OPEN, registry=registry)
    timed = Histogram(
        *metrics.HANDSHAKE_SECONDS, ["strategy"], buckets=metrics.BUCKETS, registry=registry
    )
    durations = [0.0, 0.0001, 0.0005, 0.00050001, 0.001, 0.04, 0.1, 1.0, 1.5, 30.0]
    for index, seconds in enumerate(durations):
        strategy = "one" if index % 3 else "another"  # any two labels
        local.timed(strategy, seconds)
        timed.labels(strategy).observe(seconds)
        local.refused(strategy, "missing_token")
        refusals.labels(strategy, "missing_token").inc()
        local.admitted(strategy)
        admissions.labels(strategy).inc()
        local.opened()
        opened.inc()
    local.closed()
    opened.dec()
    own = CollectorRegistry()
    own.register(local)
    expected = parse(generate_latest(registry).decode())
    # prometheus_client's own counters also say when they were created; ours do not.
    expected = {key: count for key, count in expected.items() if not key[0].endswith("_created")}
    assert parse(generate_latest(own).decode()) == expected


def test_openmetrics_when_the_scraper_asks_for_it(client: TestClient) -> None:
    response = client.get("/metrics", headers={"accept": "application/openmetrics-text"})
    assert response.headers["content-type"].startswith("application/openmetrics-text")
    assert response.text.rstrip().endswith("# EOF")


# -- two workers ---------------------------------------------------------------------------


@pytest.fixture(scope="module")
def workers(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveServer]:
    """``python -m ... --workers 2``, with its temporary files in a folder of ours."""
    workdir = tmp_path_factory.mktemp("workers")
    (workdir / "tmp").mkdir()
    command = [
        sys.executable, "-m", PACKAGE, "--host", "127.0.0.1", "--port", "{port}", "--workers", "2",
    ]  # fmt: skip
    server = LiveServer(workdir, command=command, env={"TMPDIR": str(workdir / "tmp")})
    with server:
        wait_for_workers(server, started=2)
        yield server
    server.assert_no_unexpected_errors()
    # The launcher removed the folder where the workers kept their numbers.
    assert list((workdir / "tmp").iterdir()) == []


def worker_processes(server: LiveServer) -> list[psutil.Process]:
    """The launcher's live workers (not multiprocessing's resource tracker, not a zombie)."""
    workers = []
    for child in psutil.Process(server.pid).children():
        with suppress(psutil.ZombieProcess, psutil.NoSuchProcess):
            if "spawn_main" in " ".join(child.cmdline()):
                workers.append(child)
    return workers


def wait_for_workers(server: LiveServer, started: int) -> list[int]:
    """The two workers' pids, once ``started`` workers in all have loaded the app."""
    deadline = time.monotonic() + 20
    while True:
        workers = [worker.pid for worker in worker_processes(server)]
        if len(workers) == 2 and server.log.count("Application startup complete.") >= started:
            return workers
        assert time.monotonic() < deadline, server.log
        time.sleep(0.1)


def metrics_folder(server: LiveServer) -> Path:
    (folder,) = Path(server.env["TMPDIR"]).iterdir()  # made by the launcher
    return folder


def scrape_live(server: LiveServer) -> Samples:
    status, body = server.get("/metrics")
    assert status == 200
    return parse(body.decode())


def connections_per_worker(server: LiveServer) -> dict[int, int]:
    return {
        worker.pid: sum(
            1
            for connection in worker.net_connections()
            if connection.status == psutil.CONN_ESTABLISHED and connection.laddr.port == server.port
        )
        for worker in worker_processes(server)
    }


@contextmanager
def held(server: LiveServer, url: str) -> Iterator[ClientConnection]:
    with connect(server.ws_url + url, additional_headers=BEARER) as ws:
        ws.send("held")
        assert ws.recv(timeout=5) == "held"
        yield ws


def refuse_live(server: LiveServer, url: str, **options: Any) -> tuple[int, str]:
    """The same on the wire (``options`` for websockets' ``connect``)."""
    try:
        with connect(server.ws_url + url, **options) as ws:
            code = json.loads(ws.recv(timeout=5))["error"]
            with pytest.raises(ConnectionClosed) as closed:
                ws.recv(timeout=5)
    except InvalidStatus as refused:
        return refused.response.status_code, json.loads(refused.response.body)["code"]
    assert closed.value.rcvd is not None
    return closed.value.rcvd.code - 4000, code


def test_counts_add_up_across_workers(workers: LiveServer) -> None:
    before = scrape_live(workers)
    folder = metrics_folder(workers)
    counted_by = [folder / f"counter_{worker.pid}.db" for worker in worker_processes(workers)]
    sent = 0
    # Until both workers have counted some: the kernel hands each connection to either.
    while sent < 10 or (sent < 100 and not all(path.exists() for path in counted_by)):
        for url in ECHO_ENDPOINTS.values():
            assert refuse_live(workers, url) == (401, "missing_token")
        sent += 1
    assert all(path.exists() for path in counted_by)
    # Every scrape, whichever worker answers it, counts what both workers refused.
    for _ in range(6):
        samples = scrape_live(workers)
        for strategy in ECHO_ENDPOINTS:
            added = refusals(samples, strategy, "missing_token") - refusals(
                before, strategy, "missing_token"
            )
            assert added == sent
            timed = handshakes_timed(samples, strategy) - handshakes_timed(before, strategy)
            assert timed == sent


def test_open_connections_are_summed_and_a_dead_worker_is_forgotten(workers: LiveServer) -> None:
    url = next(iter(ECHO_ENDPOINTS.values()))
    with ExitStack() as stack:
        connections: list[ClientConnection] = []
        # Until both workers hold some: the kernel hands each connection to either.
        while len(connections) < 40 and min(connections_per_worker(workers).values()) == 0:
            connections.append(stack.enter_context(held(workers, url)))
        per_worker = connections_per_worker(workers)
        assert min(per_worker.values()) > 0, per_worker
        for _ in range(4):
            assert open_connections(scrape_live(workers)) == len(connections)

        # SIGKILL one worker: it cannot decrement its gauge; uvicorn starts another.
        victim = min(per_worker, key=per_worker.__getitem__)
        os.kill(victim, signal.SIGKILL)
        survivors = len(connections) - per_worker[victim]
        deadline = time.monotonic() + 20
        while victim in [child.pid for child in psutil.Process(workers.pid).children()]:
            assert time.monotonic() < deadline  # until uvicorn has reaped it
            time.sleep(0.1)
        wait_for_workers(workers, started=3)
        for _ in range(4):
            assert open_connections(scrape_live(workers)) == survivors
    deadline = time.monotonic() + 5
    while open_connections(scrape_live(workers)) != 0:
        assert time.monotonic() < deadline, "the gauge did not come back to 0"
        time.sleep(0.05)


# -- behind nginx --------------------------------------------------------------------------


@pytest.fixture(scope="module")
def proxy(workers: LiveServer, tmp_path_factory: pytest.TempPathFactory) -> Iterator[NginxProxy]:
    find_nginx()
    with NginxProxy(workers, tmp_path_factory.mktemp("nginx")) as proxy:
        yield proxy


def get_from(source: str, port: int, target: str) -> tuple[int, bytes]:
    """A GET sent from ``source`` (another loopback address stands for another host)."""
    address = (source, 0)
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=5, source_address=address)
    try:
        connection.request("GET", target)
        response = connection.getresponse()
        return response.status, response.read()
    finally:
        connection.close()


def other_host() -> str:
    try:
        with socket.socket() as sock:
            sock.bind(("127.0.0.2", 0))
    except OSError:
        pytest.skip("127.0.0.2 is not a local address here (Linux routes all of 127/8)")
    return "127.0.0.2"


@pytest.mark.parametrize(
    "target", ["/metrics", "/metrics?x=1", "//metrics", "/%6Detrics", "/./metrics", "/metrics/"]
)
def test_nginx_keeps_metrics_from_other_hosts(proxy: NginxProxy, target: str) -> None:
    status, body = get_from(other_host(), proxy.port, target)
    assert b"websocket_" not in body
    assert status in {403, 404, 307}, (status, body)
    # The same request from the proxy's own host (where Prometheus may run) is served.
    if target in {"/metrics", "/metrics?x=1"}:
        status, body = get_from("127.0.0.1", proxy.port, target)
        assert status == 200
        assert b"websocket_connections_open" in body


def test_nginx_still_serves_everything_else_to_other_hosts(proxy: NginxProxy) -> None:
    assert get_from(other_host(), proxy.port, "/health")[0] == 200


def test_nginx_passes_the_real_client_address_not_a_forged_one(
    proxy: NginxProxy, workers: LiveServer
) -> None:
    # What rate limits count and logs show: the address nginx saw, whatever the client claims.
    forged = {"x-forwarded-for": "203.0.113.9"}
    url = next(iter(ECHO_ENDPOINTS.values()))
    source = (other_host(), 0)
    refused = refuse_live(proxy, url, additional_headers=forged, source_address=source)  # type: ignore[arg-type]
    assert refused == (401, "missing_token")
    time.sleep(0.2)  # the log line follows the refusal
    assert f"refused WebSocket {url} from 127.0.0.2:" in workers.log
    assert "203.0.113.9" not in workers.log


def test_the_metrics_folder_is_the_launchers_own(workers: LiveServer) -> None:
    assert metrics_folder(workers).name.startswith(launcher.METRICS_DIR_PREFIX)
