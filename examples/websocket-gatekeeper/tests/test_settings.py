"""Settings are validated at start-up: no token, no app."""

import os
import subprocess
import sys
from pathlib import Path

import pytest

from websocket_gatekeeper.settings import Settings, load_settings, normalize_origin

PACKAGE = "websocket_gatekeeper"


def test_comma_separated_lists_are_split(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("WS_AUTH_TOKENS", " first-token-0123456789 , second-token-0123456789 ,")
    monkeypatch.setenv("WS_ALLOWED_ORIGINS", "https://a.example, http://localhost:8000/")
    settings = Settings(_env_file=None)
    assert settings.auth_tokens == ["first-token-0123456789", "second-token-0123456789"]
    assert settings.allowed_origins == ["https://a.example", "http://localhost:8000"]


@pytest.mark.parametrize("tokens", [None, "", " , "])
def test_no_token_stops_the_app_with_a_clear_message(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, tokens: str | None
) -> None:
    monkeypatch.chdir(tmp_path)  # no .env here
    if tokens is None:
        monkeypatch.delenv("WS_AUTH_TOKENS", raising=False)
    else:
        monkeypatch.setenv("WS_AUTH_TOKENS", tokens)
    with pytest.raises(SystemExit) as info:
        load_settings()
    assert "WS_AUTH_TOKENS: no token configured" in str(info.value.code)


@pytest.mark.parametrize("token", ["short", "has space in the token", "tökén-0123456789abcdef"])
def test_weak_or_untransmittable_tokens_are_refused(
    monkeypatch: pytest.MonkeyPatch, token: str
) -> None:
    monkeypatch.setenv("WS_AUTH_TOKENS", token)
    with pytest.raises(SystemExit) as info:
        load_settings()
    assert "WS_AUTH_TOKENS: Value error, every token must be 16+" in str(info.value.code)


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


def test_uvicorn_refuses_to_start_without_tokens(tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("WS_")}
    result = subprocess.run(
        [sys.executable, "-m", "uvicorn", f"{PACKAGE}.main:app", "--port", "0"],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
    )
    assert result.returncode != 0
    assert "WS_AUTH_TOKENS: no token configured" in result.stderr
    assert "Traceback" not in result.stderr
