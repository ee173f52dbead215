"""Routes a user adds are guarded by default, their requirements sit beside them, and
every outcome reaches the client in the project's way and is counted once.

Each case runs through Starlette's TestClient and against a real uvicorn serving
``user_routes_app.py``.
{%- if cookiecutter.rejection_strategy == "both" %}
In this project, routes that declare nothing refuse before accept (pre-accept).
{%- endif %}
"""

import json
from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi import FastAPI, WebSocket
from fastapi.testclient import TestClient
from prometheus_client import REGISTRY
from starlette.routing import Host, Match, WebSocketRoute
{%- if cookiecutter.rejection_strategy != "accept_then_close" %}
from starlette.testclient import WebSocketDenialResponse
from websockets.exceptions import InvalidStatus
{%- else %}
from starlette.websockets import WebSocketDisconnect
from websockets.exceptions import ConnectionClosed
{%- endif %}
from websockets.sync.client import connect

from {{ cookiecutter.package_name }}.main import create_app
from {{ cookiecutter.package_name }}.requirements import public
from {{ cookiecutter.package_name }}.settings import Settings

from cases import BEARER
from credentials import IDENTITY, SECOND_TOKEN
from live_server import LiveServer
from user_routes_app import add_user_routes

NO_SCOPE = {"authorization": f"Bearer {SECOND_TOKEN}"}
# (path, headers, expected refusal code) of clients the user's routes must refuse.
REFUSED = [
    pytest.param("/ws/forgotten/x", {}, "missing_token", id="nothing-declared"),
    pytest.param("/ws/teams/red/chat", {}, "missing_token", id="router-with-prefix"),
    pytest.param("/ws/rooms/lobby", {}, "missing_token", id="path-parameter"),
    pytest.param("/ws/rooms/lobby", NO_SCOPE, "insufficient_scope", id="scope-at-the-route"),
    pytest.param("/ws/rooms/closed", BEARER, "room_closed", id="rejected-in-the-endpoint"),
    pytest.param("/ws/rooms/closed", {}, "missing_token", id="rejected-but-not-admissible"),
    pytest.param("/ws/no/such/route", BEARER, "not_found", id="unknown-path"),
]
# (path, headers, the JSON the endpoint sends) of clients it must admit.
ADMITTED = [
    pytest.param(
        "/ws/rooms/lobby", BEARER, {"room": "lobby", "user": IDENTITY}, id="path-parameter"
    ),
    pytest.param("/ws/forgotten/x", NO_SCOPE, {"name": "x", "user": "bob"}, id="nothing-declared"),
    pytest.param(
        "/ws/teams/red/chat", BEARER, {"team": "red", "user": IDENTITY}, id="router-with-prefix"
    ),
    pytest.param("/ws/teams/status", {}, {"authenticated": False}, id="public"),
]


@pytest.fixture(scope="module")
def user_client() -> Iterator[TestClient]:
    app = create_app(Settings(_env_file=None))
    add_user_routes(app)
    with TestClient(app) as client:
        yield client


@pytest.fixture(scope="module")
def user_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveServer]:
    with LiveServer(tmp_path_factory.mktemp("routes"), app="user_routes_app:app") as server:
        yield server
    server.assert_no_unexpected_errors()


def refusal_code(client: TestClient, path: str, headers: dict[str, str]) -> str:
    """The ``code`` a refused client is told, in this project's way for new routes."""
{%- if cookiecutter.rejection_strategy != "accept_then_close" %}
    with (
        pytest.raises(WebSocketDenialResponse) as info,
        client.websocket_connect(path, headers=dict(headers)),
    ):
        pass
    return info.value.json()["code"]
{%- else %}
    with client.websocket_connect(path, headers=dict(headers)) as websocket:
        message = websocket.receive_json()
        with pytest.raises(WebSocketDisconnect) as info:
            websocket.receive_text()
    assert info.value.reason == message["error"]
    return message["error"]
{%- endif %}


@pytest.fixture
def fresh_client() -> Iterator[TestClient]:
    """An app that has seen no handshake yet, so it has remembered no path."""
    app = create_app(Settings(_env_file=None))
    add_user_routes(app)
    with TestClient(app) as client:
        yield client


# The first handshake on a path is decided after routing; the guard remembers the
# route's requirements and decides the next one before routing: both must agree.
@pytest.mark.parametrize(("path", "headers", "code"), REFUSED)
def test_user_routes_refuse_in_process(
    fresh_client: TestClient, path: str, headers: dict[str, str], code: str
) -> None:
    assert refusal_code(fresh_client, path, headers) == code
    assert refusal_code(fresh_client, path, headers) == code


@pytest.mark.parametrize(("path", "headers", "sent"), ADMITTED)
def test_user_routes_admit_in_process(
    fresh_client: TestClient, path: str, headers: dict[str, str], sent: dict[str, object]
) -> None:
    for _ in range(2):
        with fresh_client.websocket_connect(path, headers=dict(headers)) as websocket:
            assert websocket.receive_json() == sent


def test_a_route_added_after_handshakes_is_found(fresh_client: TestClient) -> None:
    app = fresh_client.app
    assert isinstance(app, FastAPI)
    assert refusal_code(fresh_client, "/ws/later", dict(BEARER)) == "not_found"

    @app.websocket("/ws/later")
    async def later(websocket: WebSocket) -> None:
        await websocket.accept()
        await websocket.send_json({"user": websocket.user.identity})
        await websocket.close()

    with fresh_client.websocket_connect("/ws/later", headers=dict(BEARER)) as websocket:
        assert websocket.receive_json() == {"user": IDENTITY}
    assert refusal_code(fresh_client, "/ws/later", {}) == "missing_token"


def test_a_route_replaced_in_place_is_checked_after_routing(fresh_client: TestClient) -> None:
    # Same number of routes, so the guard still remembers the public route's
    # requirements; the endpoint's own are checked after routing, and win.
    app = fresh_client.app
    assert isinstance(app, FastAPI)
    with fresh_client.websocket_connect("/ws/teams/status") as websocket:
        assert websocket.receive_json() == {"authenticated": False}
    with fresh_client.websocket_connect("/ws/teams/status") as websocket:
        assert websocket.receive_json() == {"authenticated": False}

    async def guarded(websocket: WebSocket) -> None:
        await websocket.accept()
        await websocket.send_json({"user": websocket.user.identity})
        await websocket.close()

    # The router holds FastAPI's included routers as they are, so the route to replace
    # is found by what it matches.
    scope = {"type": "websocket", "path": "/ws/teams/status", "root_path": ""}
    index = next(
        i for i, route in enumerate(app.router.routes) if route.matches(scope)[0] is Match.FULL
    )
    app.router.routes[index] = WebSocketRoute("/ws/teams/status", guarded)
    assert refusal_code(fresh_client, "/ws/teams/status", {}) == "missing_token"
    with fresh_client.websocket_connect("/ws/teams/status", headers=dict(BEARER)) as websocket:
        assert websocket.receive_json() == {"user": IDENTITY}


def test_host_routing_is_always_decided_after_routing() -> None:
    # With Host routes, one path can lead to different routes: nothing is remembered.
    app = create_app(Settings(_env_file=None))
    public_app, guarded_app = FastAPI(), FastAPI()

    @public_app.websocket("/ws/hosted")
    @public
    async def open_to_all(websocket: WebSocket) -> None:
        await websocket.accept()
        await websocket.send_json({"authenticated": websocket.user.is_authenticated})
        await websocket.close()

    @guarded_app.websocket("/ws/hosted")
    async def members_only(websocket: WebSocket) -> None:
        await websocket.accept()
        await websocket.send_json({"user": websocket.user.identity})
        await websocket.close()

    app.router.routes.insert(0, Host("public.example", public_app))
    app.router.routes.insert(0, Host("members.example", guarded_app))
    with TestClient(app) as client:
        for _ in range(2):
            public_host = {"host": "public.example"}
            with client.websocket_connect("/ws/hosted", headers=public_host) as websocket:
                assert websocket.receive_json() == {"authenticated": False}
            members = {"host": "members.example"}
            assert refusal_code(client, "/ws/hosted", members) == "missing_token"


@pytest.mark.parametrize(("path", "headers", "code"), REFUSED)
def test_user_routes_refuse_on_the_wire(
    user_server: LiveServer, path: str, headers: dict[str, str], code: str
) -> None:
{%- if cookiecutter.rejection_strategy != "accept_then_close" %}
    with (
        pytest.raises(InvalidStatus) as info,
        connect(user_server.ws_url + path, additional_headers=headers),
    ):
        pass
    response = info.value.response
    assert response.status_code in {401, 403, 404}
    assert json.loads(response.body)["code"] == code
{%- else %}
    with connect(user_server.ws_url + path, additional_headers=headers) as websocket:
        assert json.loads(websocket.recv(timeout=5))["error"] == code
        with pytest.raises(ConnectionClosed) as info:
            websocket.recv(timeout=5)
    assert info.value.rcvd is not None
    assert info.value.rcvd.code in {4401, 4403, 4404}
    assert info.value.rcvd.reason == code
{%- endif %}


@pytest.mark.parametrize(("path", "headers", "sent"), ADMITTED)
def test_user_routes_admit_on_the_wire(
    user_server: LiveServer, path: str, headers: dict[str, str], sent: dict[str, object]
) -> None:
    with connect(user_server.ws_url + path, additional_headers=headers) as websocket:
        assert json.loads(websocket.recv(timeout=5)) == sent


def counted(name: str, **labels: str) -> float:
    return sum(
        sample.value
        for metric in REGISTRY.collect()
        for sample in metric.samples
        if sample.name == name and labels.items() <= sample.labels.items()
    )


@pytest.mark.parametrize(
    ("path", "headers", "code"),
    [
        ("/ws/no/such/route", BEARER, "not_found"),
        ("/ws/rooms/lobby", NO_SCOPE, "insufficient_scope"),
    ],
)
def test_a_refused_client_is_counted_once_and_never_as_admitted(
    user_client: TestClient, path: str, headers: dict[str, str], code: str
) -> None:
    admitted = counted("websocket_admissions_total")
    refused = counted("websocket_refusals_total", code=code)
    refusal_code(user_client, path, headers)
    assert counted("websocket_refusals_total", code=code) == refused + 1
    assert counted("websocket_admissions_total") == admitted


def test_the_routes_guide_shows_this_very_code() -> None:
    # docs/routes.md quotes user_routes_app.py: what the guide says is what runs here.
    tests = Path(__file__).parent
    source = (tests / "user_routes_app.py").read_text(encoding="utf-8")
    code = source[source.index('"""', 3) + 3 :].lstrip("\n")
    guide = (tests.parent / "docs" / "routes.md").read_text(encoding="utf-8")
    assert f"```python\n{code}```" in guide


def test_a_public_route_answers_a_browser_that_offers_bearer(user_client: TestClient) -> None:
    # Browsers fail a handshake whose offered protocols get no answer, credential or not.
    with user_client.websocket_connect("/ws/teams/status", subprotocols=["bearer"]) as websocket:
        assert websocket.accepted_subprotocol == "bearer"
        assert websocket.receive_json() == {"authenticated": False}
