"""What a hostile or careless client sends, against the recommended server.

The server runs as the README runs it (the ``python -m`` launcher: uvicorn with
h11 and wsproto). Whatever arrives: never a 5xx, never an ERROR line or a
traceback in the log, no descriptor left open, and allowed clients are still
served afterwards.
"""

import json
import socket
import time
from collections.abc import Iterator

import psutil
import pytest
from websockets.exceptions import ConnectionClosed, InvalidStatus
from websockets.sync.client import connect

from cases import BEARER, ECHO_PATHS
from credentials import TOKEN
from live_server import LiveServer
from wire import exchange, handshake_request


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveServer]:
    with LiveServer(tmp_path_factory.mktemp("recommended"), launcher=True) as server:
        yield server
    server.assert_no_unexpected_errors()


def refusal_code(url: str) -> str:
    """The machine code of a refusal, however it was delivered: in the JSON body of
    an HTTP refusal, or as the reason of the close frame that followed an accept."""
    try:
        with connect(url) as ws:
            while True:
                ws.recv(timeout=5)
    except InvalidStatus as exc:
        return json.loads(exc.response.body)["code"]
    except ConnectionClosed as exc:
        return exc.rcvd.reason if exc.rcvd else ""


def head(path: str, port: int, *lines: str) -> bytes:
    return "\r\n".join([f"GET {path} HTTP/1.1", f"Host: 127.0.0.1:{port}", *lines, "", ""]).encode()


KEY = "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ=="
MALFORMED = {
    "missing-key": ("Upgrade: websocket", "Connection: Upgrade", "Sec-WebSocket-Version: 13"),
    "invalid-key": ("Upgrade: websocket", "Connection: Upgrade", "Sec-WebSocket-Key: short",
                    "Sec-WebSocket-Version: 13"),
    "wrong-version": ("Upgrade: websocket", "Connection: Upgrade", KEY, "Sec-WebSocket-Version: 8"),
    "missing-upgrade": ("Connection: Upgrade", KEY, "Sec-WebSocket-Version: 13"),
    "upgrade-to-h2c": ("Upgrade: h2c", "Connection: Upgrade", KEY, "Sec-WebSocket-Version: 13"),
}  # fmt: skip


@pytest.mark.parametrize("path", ECHO_PATHS)
@pytest.mark.parametrize("name", MALFORMED)
def test_malformed_upgrade_is_refused(server: LiveServer, path: str, name: str) -> None:
    response = exchange(
        server.port, head(path, server.port, *MALFORMED[name]), until_close_frame=True
    )
    if response.status == 101:
        # wsproto tolerates a short Sec-WebSocket-Key; the client is still unauthenticated.
        assert name == "invalid-key"
        assert any(b"missing_token" in payload for _, payload in response.frames)
    else:
        assert 400 <= response.status < 500, response


@pytest.mark.parametrize("path", ECHO_PATHS)
def test_megabyte_header_never_reaches_the_app(server: LiveServer, path: str) -> None:
    # h11 refuses a request head that spans reads beyond 16 KB.
    request = handshake_request(path, {"X-Padding": "a" * 1_000_000}, port=server.port)
    try:
        status = exchange(server.port, request).status
    except ConnectionResetError:
        status = 400  # answered 400 and closed while we were still sending
    assert status == 400


@pytest.mark.parametrize("path", ECHO_PATHS)
@pytest.mark.parametrize(
    "headers",
    [
        pytest.param({"X-Padding": "a" * 100_000}, id="100KB-header"),
        pytest.param({"Authorization": "Bearer " + "a" * 100_000}, id="100KB-token"),
        pytest.param({f"X-H{i}": "c" * 100 for i in range(200)}, id="200-headers"),
    ],
)
def test_oversized_handshake_is_refused(
    server: LiveServer, path: str, headers: dict[str, str]
) -> None:
    # Either h11 stops it (400), or it reaches the policy, which refuses it (431).
    request = handshake_request(path, headers, port=server.port)
    try:
        response = exchange(server.port, request, until_close_frame=True)
    except ConnectionResetError:
        return  # h11 answered 400 and reset while the oversized request was still arriving
    if response.status == 101:  # refused after the accept: the close frame says why
        assert response.frames[-1][1][2:] == b"headers_too_large"
    else:
        assert response.status in {400, 431}, response


@pytest.mark.parametrize("path", ECHO_PATHS)
def test_non_utf8_token_is_just_a_wrong_token(server: LiveServer, path: str) -> None:
    request = handshake_request(path, port=server.port).replace(
        b"\r\n\r\n", b"\r\nAuthorization: Bearer \xff\xfe\xc3\x28\x80\r\n\r\n"
    )
    response = exchange(server.port, request, until_close_frame=True)
    if response.status == 101:  # refused after the accept: the frames say why
        assert any(b"invalid_token" in payload for _, payload in response.frames)
    else:
        assert response.status == 403
        assert json.loads(response.body)["code"] == "invalid_token"


@pytest.mark.parametrize("path", ECHO_PATHS)
def test_hundreds_of_query_parameters(server: LiveServer, path: str) -> None:
    query = "&".join(f"p{i}={i}" for i in range(500))
    with connect(f"{server.ws_url}{path}?{query}&token={TOKEN}") as ws:
        ws.send("still here")
        assert ws.recv(timeout=5) == "still here"


@pytest.mark.parametrize("path", ECHO_PATHS)
@pytest.mark.parametrize("cut", ["mid-request-line", "mid-headers", "after-request"])
def test_client_vanishing_mid_handshake(server: LiveServer, path: str, cut: str) -> None:
    request = handshake_request(path, BEARER, port=server.port)
    sent = {"mid-request-line": request[:10], "mid-headers": request[:60], "after-request": request}
    with socket.create_connection((server.host, server.port)) as sock:
        sock.sendall(sent[cut])
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, b"\x01\x00\x00\x00\x00\x00\x00\x00")
    # SO_LINGER 0 makes close() send a reset, the rudest way to leave.


@pytest.mark.parametrize("path", ECHO_PATHS)
def test_oversized_message_closes_with_1009(server: LiveServer, path: str) -> None:
    # SETTINGS_ENV sets WS_MAX_MESSAGE_BYTES=1024; the launcher passes it to uvicorn.
    with connect(f"{server.ws_url}{path}", additional_headers=BEARER) as ws:
        ws.send("x" * 100_000)
        with pytest.raises(ConnectionClosed) as info:
            ws.recv(timeout=5)
    assert info.value.rcvd is not None
    assert info.value.rcvd.code == 1009


def test_refusals_are_logged_once_without_the_token(server: LiveServer) -> None:
    secretish = "query-token-that-must-not-be-logged"
    for path in ECHO_PATHS:
        assert refusal_code(f"{server.ws_url}{path}?token={secretish}") == "invalid_token"
    time.sleep(0.2)
    log = server.log
    assert secretish not in log
    assert TOKEN not in log
    for path in ECHO_PATHS:
        refusals = [line for line in log.splitlines() if f"refused WebSocket {path} " in line]
        assert any(line.endswith(": invalid_token") for line in refusals), log


def test_no_descriptor_leaks_after_a_burst(server: LiveServer) -> None:
    process = psutil.Process(server.pid)
    baseline = process.num_fds()
    for path in ECHO_PATHS:
        for _ in range(100):
            exchange(server.port, handshake_request(path, port=server.port))
        for _ in range(50):
            with socket.create_connection((server.host, server.port)) as sock:
                sock.sendall(handshake_request(path, port=server.port)[:30])
    deadline = time.monotonic() + 5
    while process.num_fds() > baseline and time.monotonic() < deadline:
        time.sleep(0.1)
    assert process.num_fds() <= baseline


def test_allowed_clients_are_still_served(server: LiveServer) -> None:
    for path in ECHO_PATHS:
        with connect(f"{server.ws_url}{path}", additional_headers=BEARER) as ws:
            ws.send("after all that")
            assert ws.recv(timeout=5) == "after all that"
    status, _ = server.get("/health")
    assert status == 200
