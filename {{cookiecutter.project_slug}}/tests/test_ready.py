"""``GET /ready``: 200 while the store (and the key source) answers, else 503
naming the part that does not; ``GET /health`` stays liveness only."""

import json
import time
import urllib.error
import urllib.request
from pathlib import Path

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient

from live_server import LiveServer
from redis_server import RedisServer

READY = (200, {"status": "ready"})
STORE_DOWN = (503, {"status": "unready", "unready": ["store"]})


def test_ready_with_the_memory_store(client: TestClient) -> None:
    response = client.get("/ready")
    assert (response.status_code, response.json()) == READY
    assert response.headers["cache-control"] == "no-store"


def test_an_unreachable_store_is_named(app: FastAPI, monkeypatch: pytest.MonkeyPatch) -> None:
    async def unreachable() -> bool:
        return False

    with TestClient(app) as client:
        monkeypatch.setattr(app.state.admission.store, "ping", unreachable)
        response = client.get("/ready")
        assert (response.status_code, response.json()) == STORE_DOWN
        assert client.get("/health").status_code == 200  # alive all the same


def ready(server: LiveServer) -> tuple[int, object]:
    """(status, JSON body) of GET /ready; (0, None) while nothing answers."""
    try:
        with urllib.request.urlopen(server.http_url + "/ready", timeout=2) as response:  # noqa: S310
            return response.status, json.loads(response.read())
    except urllib.error.HTTPError as error:
        return error.code, json.loads(error.read())
    except OSError:
        return 0, None


def eventually(server: LiveServer, expected: tuple[int, object], seconds: float = 10) -> None:
    deadline = time.monotonic() + seconds
    while (seen := ready(server)) != expected:
        assert time.monotonic() < deadline, f"/ready answered {seen}, not {expected}"
        time.sleep(0.1)


def test_ready_follows_a_real_redis_down_and_back(
    redis_server: RedisServer, tmp_path: Path
) -> None:
    env = {"WS_LIMITS_STORAGE_URL": redis_server.url}
    with LiveServer(tmp_path, env=env) as server:
        eventually(server, READY)
        redis_server.stop()
        eventually(server, STORE_DOWN)
        assert server.get("/health")[0] == 200
        redis_server.start()
        eventually(server, READY)
    server.assert_no_unexpected_errors()
