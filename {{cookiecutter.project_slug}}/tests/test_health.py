"""``GET /health`` answers 200 whatever the WebSocket guard does."""

import json

from fastapi.testclient import TestClient

from live_server import LiveServer


def test_health_in_process(client: TestClient) -> None:
    response = client.get("/health")
    assert response.status_code == 200
    assert response.json() == {"status": "ok"}


def test_health_on_a_live_server(live_server: LiveServer) -> None:
    status, body = live_server.get("/health")
    assert status == 200
    assert json.loads(body) == {"status": "ok"}
