"""Shape the freshly rendered project for the chosen rejection strategy.

- Remove every file that belongs only to a strategy that was not chosen, so the
  generated code carries no dead branches.
- Write a ``.env`` with a random token: the app refuses to start without one,
  and a per-project random secret is never a shared default.
- Print the next steps.
"""

import json
import secrets
import shutil
import sys
from pathlib import Path

ANSWERS = json.loads(r'{{ cookiecutter | tojson }}')

PACKAGE = Path("src", ANSWERS["package_name"])

# Files that exist only for one strategy. Everything else is shared.
STRATEGY_FILES = {
    "pre_accept": [
        PACKAGE / "pre_accept.py",
        PACKAGE / "routes" / "pre_accept_echo.py",
        Path("tests", "test_pre_accept.py"),
        Path("tests", "test_live_pre_accept.py"),
        Path("docs", "pre-accept.md"),
    ],
    "accept_then_close": [
        PACKAGE / "accept_then_close.py",
        PACKAGE / "routes" / "accept_then_close_echo.py",
        Path("tests", "test_accept_then_close.py"),
        Path("tests", "test_live_accept_then_close.py"),
        Path("tests", "crash_app.py"),
        Path("docs", "accept-then-close.md"),
    ],
}


def chosen_strategies(answer: str) -> set[str]:
    return set(STRATEGY_FILES) if answer == "both" else {answer}


def prune(chosen: set[str]) -> None:
    for strategy, paths in STRATEGY_FILES.items():
        if strategy in chosen:
            continue
        for path in paths:
            if path.is_dir():
                shutil.rmtree(path)
            else:
                path.unlink()


def write_env_file() -> str:
    token = secrets.token_urlsafe(32)
    example = Path(".env.example").read_text(encoding="utf-8")
    Path(".env").write_text(
        example.replace("WS_AUTH_TOKENS=", f"WS_AUTH_TOKENS={token}", 1), encoding="utf-8"
    )
    return token


def echo_paths(answer: str) -> list[str]:
    if answer == "both":
        return ["/ws/pre-accept/echo", "/ws/accept-then-close/echo"]
    return ["/ws/echo"]


def main() -> int:
    answer = ANSWERS["rejection_strategy"]
    prune(chosen_strategies(answer))
    token = write_env_file()
    slug = ANSWERS["project_slug"]
    package = ANSWERS["package_name"]
    urls = "\n".join(f"    ws://127.0.0.1:8000{path}?token={token}" for path in echo_paths(answer))
    setup = (
        "python3 -m venv .venv && .venv/bin/python -m pip install -q -U pip"
        " && .venv/bin/python -m pip install -q -e . --group dev"
    )
    print(
        f"""
Created {slug}/ (rejection strategy: {answer}).

In {slug}/, run the app (sets up .venv, then serves on http://127.0.0.1:8000):
    {setup} && .venv/bin/python -m {package}

Run its tests (same set-up, then pytest):
    {setup} && .venv/bin/python -m pytest

A random token was written to {slug}/.env (never commit it). Try:
{urls}
Docs: {slug}/README.md, {slug}/docs/overview.md
"""
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
