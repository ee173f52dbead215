"""Settings are validated at start-up, with one clean line per problem."""

import os
import subprocess
import sys
from pathlib import Path

import pytest

from {{ cookiecutter.package_name }}.settings import (
    Settings,
    load_settings,
    normalize_origin,
)

PACKAGE = "{{ cookiecutter.package_name }}"


def test_comma_separated_origins_are_split(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("WS_ALLOWED_ORIGINS", "https://a.example, http://localhost:8000/")
    settings = Settings(_env_file=None)
    assert settings.allowed_origins == ["https://a.example", "http://localhost:8000"]


@pytest.mark.parametrize(
    "origin",
    ["*", "https://*.example.com", "example.com", "ftp://example.com", "https://a.example/path"],
)
def test_origins_must_be_exact(origin: str) -> None:
    with pytest.raises(ValueError, match=r"origin|scheme"):
        normalize_origin(origin)


def test_origin_is_normalized_like_browsers_send_it() -> None:
    assert normalize_origin("HTTPS://App.Example.com:8443/") == "https://app.example.com:8443"
    assert normalize_origin("null") == "null"


@pytest.mark.parametrize(
    ("name", "value", "expected"),
    [
        ("WS_HANDSHAKE_RATE_LIMIT", "off", "off"),
        ("WS_HANDSHAKE_RATE_LIMIT", "5/second;100/minute", "5/second;100/minute"),
        ("WS_MAX_CONNECTIONS_PER_IDENTITY", "off", None),
        ("WS_MAX_CONNECTIONS_PER_IDENTITY", "3", 3),
        ("WS_LIMITS_STORAGE_URL", "redis://cache:6379/2", "redis://cache:6379/2"),
        ("WS_HANDSHAKE_TIMEOUT_SECONDS", "2.5", 2.5),
        ("WS_MAX_OPEN_CONNECTIONS", "auto", None),
        ("WS_MAX_OPEN_CONNECTIONS", "5000", 5000),
        ("WS_MAX_TRACKED_ADDRESSES", "20000", 20_000),
    ],
)
def test_limits_settings(
    monkeypatch: pytest.MonkeyPatch, name: str, value: str, expected: object
) -> None:
    monkeypatch.setenv(name, value)
    settings = Settings(_env_file=None)
    assert getattr(settings, name.removeprefix("WS_").lower()) == expected


@pytest.mark.parametrize(
    ("name", "value", "words"),
    [
        ("WS_HANDSHAKE_RATE_LIMIT", "lots", "is not a rate limit; use e.g. 50/second"),
        ("WS_LIMITS_STORAGE_URL", "postgres://db", "neither memory:// nor a redis://"),
        ("WS_ALLOWED_ORIGINS", "*", "is not an exact origin"),
        ("WS_MAX_CONNECTIONS_PER_IDENTITY", "0", "greater than or equal to 1"),
        ("WS_HANDSHAKE_TIMEOUT_SECONDS", "0", "greater than 0"),
        ("WS_MAX_OPEN_CONNECTIONS", "none", "valid integer"),
        ("WS_MAX_TRACKED_ADDRESSES", "10", "greater than or equal to 100"),
    ],
)
def test_a_bad_value_is_one_clean_line(
    monkeypatch: pytest.MonkeyPatch, name: str, value: str, words: str
) -> None:
    monkeypatch.setenv(name, value)
    with pytest.raises(SystemExit) as info:
        load_settings()
    message = str(info.value.code)
    [line] = [line for line in message.splitlines() if line.startswith("  ")]
    assert line.startswith(f"  {name}: ")
    assert words in line
    assert "Value error" not in message  # pydantic's prefix is not for people


def test_below_the_app_defaults() -> None:
    settings = Settings(_env_file=None)
    assert settings.handshake_timeout_seconds == 10
    assert settings.max_open_connections is None  # auto: from the descriptor limit
    assert settings.max_tracked_addresses == 100_000


def run_app(tmp_path: Path, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "uvicorn", f"{PACKAGE}.main:app", "--port", "0"],
        cwd=tmp_path, env=env, capture_output=True, text=True, timeout=30, check=False,
    )  # fmt: skip


def test_uvicorn_refuses_to_start_without_credentials(tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("WS_")}
    result = run_app(tmp_path, env)  # tmp_path: no .env there either
    assert result.returncode != 0
    assert "Invalid configuration" in result.stderr
    assert "cp .env.example .env" in result.stderr  # the way back to a working setup
    assert "Traceback" not in result.stderr
