"""Log lines under plain ``uvicorn``: no false ERROR after a refusal, real errors still
shown, credentials never written."""

import shutil
import sys
import time
from pathlib import Path

import pytest
from websockets.exceptions import ConnectionClosed, InvalidStatus
from websockets.sync.client import connect

from cases import BEARER, ECHO_ENDPOINTS
from credentials import TOKEN
from live_server import LiveServer

FALSE_ERROR = "ERROR:    ASGI callable returned without completing handshake."
PROJECT = Path(__file__).resolve().parents[1]


def refused_status(url: str, headers: dict[str, str] | None = None) -> int:
    with pytest.raises(InvalidStatus) as info, connect(url, additional_headers=headers):
        pass
    return info.value.response.status_code


def not_found_status(url: str, headers: dict[str, str] | None = None) -> int:
    """The status of an unknown path's refusal: HTTP, or after accept 4000 + status."""
    try:
        with connect(url, additional_headers=headers) as ws:
            while True:
                ws.recv(timeout=5)
    except InvalidStatus as refused:
        return refused.response.status_code
    except ConnectionClosed as closed:
        return (closed.rcvd.code if closed.rcvd else 1006) - 4000


def refuse_without_credential(url: str) -> None:
    try:
        with connect(url) as ws:
            ws.recv(timeout=5)  # refused after accepting: a message, then a close
    except (InvalidStatus, ConnectionClosed):
        pass


def test_refusals_leave_no_false_error_but_a_broken_endpoint_still_does(tmp_path: Path) -> None:
    # Plain `uvicorn app` picks websockets-sansio, whose denial path logs a false
    # ERROR (upstream bug); logs.py drops it for connections the app refused.
    with LiveServer(tmp_path, ws="websockets-sansio", app="broken_app:app") as server:
        assert not_found_status(f"{server.ws_url}/ws/no-such-endpoint", BEARER) == 404
        for path in ECHO_ENDPOINTS.values():  # whatever else refuses before accepting
            refuse_without_credential(server.ws_url + path)
        time.sleep(0.2)
        assert FALSE_ERROR not in server.log
        # The same line from an endpoint that really failed to answer stays an ERROR.
        assert refused_status(f"{server.ws_url}/ws/test/broken", BEARER) == 500
        time.sleep(0.2)
    assert server.log.count(FALSE_ERROR) == 1, server.log


def test_credentials_in_query_strings_are_redacted(tmp_path: Path) -> None:
    with LiveServer(tmp_path, ws="websockets-sansio") as server:
        for path in ECHO_ENDPOINTS.values():
            with connect(f"{server.ws_url}{path}?token={TOKEN}") as ws:
                ws.send("hi")
                assert ws.recv(timeout=5) == "hi"
        not_found_status(f"{server.ws_url}/ws/no-such-endpoint?ticket=some-ticket-value")
        time.sleep(0.2)
    assert TOKEN not in server.log
    assert "some-ticket-value" not in server.log
    assert "token=[redacted]" in server.log
    assert "ticket=[redacted]" in server.log


def test_fastapi_run_serves_the_same_app(tmp_path: Path) -> None:
    # `fastapi run` finds the app through [tool.fastapi] in pyproject.toml; run it
    # from a copy of that file alone, so no developer .env is read.
    shutil.copy(PROJECT / "pyproject.toml", tmp_path / "pyproject.toml")
    fastapi = str(Path(sys.executable).parent / "fastapi")
    command = [fastapi, "run", "--host", "127.0.0.1", "--port", "{port}"]
    with LiveServer(tmp_path, command=command) as server:
        assert server.get("/health")[0] == 200
        assert not_found_status(f"{server.ws_url}/ws/no-such-endpoint", BEARER) == 404
        for path in ECHO_ENDPOINTS.values():
            with connect(server.ws_url + path, additional_headers=BEARER) as ws:
                ws.send("via fastapi run")
                assert ws.recv(timeout=5) == "via fastapi run"
        time.sleep(0.2)
    server.assert_no_unexpected_errors()
