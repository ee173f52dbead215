"""The ``connect`` command (``python -m <package> connect``) against a live uvicorn:
every channel, its output lines and its exit status (0 only after a normal close)."""

import json
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from cases import ECHO_ENDPOINTS
from credentials import TOKEN, WRONG_TOKEN
from live_server import PACKAGE, LiveServer

STRATEGIES = list(ECHO_ENDPOINTS)
{%- if cookiecutter.rejection_strategy == "pre_accept" %}
CLOSES_AFTER_ACCEPT: set[str] = set()  # strategies that refuse with a close frame
{%- else %}
CLOSES_AFTER_ACCEPT = {"accept_then_close"}  # strategies that refuse with a close frame
{%- endif %}


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveServer]:
    with LiveServer(tmp_path_factory.mktemp("cli"), app="client_app:app") as server:
        yield server


def connect(cwd: Path, *args: str) -> subprocess.CompletedProcess[str]:
    command = [sys.executable, "-m", PACKAGE, "connect", *args]
    return subprocess.run(command, cwd=cwd, capture_output=True, text=True, timeout=60)


@pytest.mark.parametrize("channel", ["header", "subprotocol", "ticket", "query"])
@pytest.mark.parametrize("strategy", STRATEGIES)
def test_every_channel_echoes_and_exits_0(
    server: LiveServer, tmp_path: Path, strategy: str, channel: str
) -> None:
    url = server.ws_url + ECHO_ENDPOINTS[strategy]
    args = ["--token", TOKEN, "--channel", channel, "--send", "hello", "--send", "two words"]
    done = connect(tmp_path, url, *args)
    expected = "< hello\n< two words\nclosed: 1000\n"
    assert (done.returncode, done.stdout) == (0, expected), done.stderr


@pytest.mark.parametrize(
    ("token", "status", "code"), [(None, 401, "missing_token"), (WRONG_TOKEN, 403, "invalid_token")]
)
@pytest.mark.parametrize("strategy", STRATEGIES)
def test_a_refusal_is_printed_and_exits_1(
    server: LiveServer, tmp_path: Path, strategy: str, token: str | None, status: int, code: str
) -> None:
    args = ["--send", "hello"] + (["--token", token] if token else [])
    done = connect(tmp_path, server.ws_url + ECHO_ENDPOINTS[strategy], *args)
    assert done.returncode == 1, done.stderr
    lines = done.stdout.splitlines()
    if strategy in CLOSES_AFTER_ACCEPT:  # the JSON message, then the close
        assert json.loads(lines[0].removeprefix("< "))["error"] == code
        assert lines[1:] == [f"closed: {4000 + status} {code}"]
    else:
        assert lines == [f"refused: {status} {code}"]


def test_a_refused_ticket_request_is_printed(server: LiveServer, tmp_path: Path) -> None:
    url = server.ws_url + ECHO_ENDPOINTS[STRATEGIES[0]]
    done = connect(tmp_path, url, "--token", WRONG_TOKEN, "--channel", "ticket")
    assert (done.returncode, done.stdout) == (1, "refused: 403 invalid_token\n"), done.stderr


@pytest.mark.parametrize(("code", "status"), [(1000, 0), (4403, 1)])
def test_without_send_it_stays_until_the_server_closes(
    server: LiveServer, tmp_path: Path, code: int, status: int
) -> None:
    url = f"{server.ws_url}/ws/test/close/{code}?key=cli-{code}&reason=bye"
    done = connect(tmp_path, url)
    assert (done.returncode, done.stdout) == (status, f"closed: {code} bye\n"), done.stderr


def test_it_reconnects_and_says_so_with_verbose(server: LiveServer, tmp_path: Path) -> None:
    url = f"{server.ws_url}/ws/test/close/1012?key=cli-restart&times=1&reason=restart"
    done = connect(tmp_path, url, "--send", "hello", "--verbose")
    assert done.returncode == 0, done.stderr
    assert done.stdout == "closed: 1012 restart\n< hello\nclosed: 1000\n"
    assert "closed: 1012 restart: reconnect; attempt 2 in" in done.stderr
