"""Shape the freshly rendered project for the chosen rejection strategy.

- Remove every file that belongs only to a strategy that was not chosen, so the
  generated code carries no dead branches.
- Write a ``.env`` with a random token: the app refuses to start without one,
  and a per-project random secret is never a shared default.
- Keep the answers in ``.cruft.json`` (cruft-compatible) for later updates.
- Print the next steps.
"""

import json
import runpy
import secrets
import shutil
import sys
from pathlib import Path

# The answers as JSON data: tojson escapes every ' so this raw string cannot end early.
ANSWERS = json.loads(r'{{ cookiecutter | tojson }}')  # fmt: skip

PACKAGE = Path("src", ANSWERS["package_name"])

# Files that exist only for one strategy. Everything else is shared.
STRATEGY_FILES = {
    "pre_accept": [
        PACKAGE / "pre_accept.py",
        PACKAGE / "routes" / "pre_accept_echo.py",
        Path("tests", "test_pre_accept.py"),
        Path("tests", "test_live_pre_accept.py"),
        Path("tests", "no_denial_extension_app.py"),
        Path("benchmarks", "strategy_pre_accept.py"),
        Path("docs", "pre-accept.md"),
    ],
    "accept_then_close": [
        PACKAGE / "accept_then_close.py",
        PACKAGE / "routes" / "accept_then_close_echo.py",
        Path("tests", "test_accept_then_close.py"),
        Path("tests", "test_live_accept_then_close.py"),
        Path("tests", "crash_app.py"),
        Path("benchmarks", "strategy_accept_then_close.py"),
        Path("docs", "accept-then-close.md"),
    ],
}


# Files that exist only for an optional piece, removed when it is turned off.
OPTION_FILES = {
    "browser_demo": [
        PACKAGE / "routes" / "demo.py",
        PACKAGE / "routes" / "demo.html",
        Path("tests", "test_browser_demo.py"),
    ],
    "github_ci": [Path(".github")],
    "docker": [Path("Dockerfile"), Path(".dockerignore")],
    "pre_commit": [Path(".pre-commit-config.yaml")],
}
SCREENSHOTS = Path("docs", "screenshots")  # one per strategy; the chosen one is kept


def chosen_strategies(answer: str) -> set[str]:
    return set(STRATEGY_FILES) if answer == "both" else {answer}


def remove(paths: list[Path]) -> None:
    for path in paths:
        if path.is_dir():
            shutil.rmtree(path)
        else:
            path.unlink()


def prune(chosen: set[str]) -> None:
    for strategy, paths in STRATEGY_FILES.items():
        if strategy not in chosen:
            remove(paths)
    for option, paths in OPTION_FILES.items():
        if not ANSWERS[option]:
            remove(paths)


def keep_screenshot(answer: str) -> None:
    """The demo page differs per strategy: keep the screenshot of the chosen one."""
    if ANSWERS["browser_demo"]:
        (SCREENSHOTS / f"browser-demo-{answer}.png").rename(Path("docs", "browser-demo.png"))
    shutil.rmtree(SCREENSHOTS)


def write_env_file() -> str:
    token = secrets.token_urlsafe(32)
    example = Path(".env.example").read_text(encoding="utf-8")
    Path(".env").write_text(
        example.replace("WS_AUTH_TOKENS=", f"WS_AUTH_TOKENS={token}", 1), encoding="utf-8"
    )
    return token


def write_answers() -> None:
    """Keep the answers in .cruft.json, for `cruft update` or a re-generation later."""
    machine_specific = {"_output_dir", "_repo_dir", "__prompts__"}
    answers = {key: value for key, value in ANSWERS.items() if key not in machine_specific}
    cruft = {
        "template": ANSWERS["_template"],
        "commit": None,
        "checkout": ANSWERS.get("_checkout"),
        "context": {"cookiecutter": answers},
        "directory": None,
        "skip": [".env", "docs/browser-demo.png"],
    }
    Path(".cruft.json").write_text(json.dumps(cruft, indent=2) + "\n", encoding="utf-8")


def echo_paths() -> list[str]:
    """The echo endpoints, as the freshly rendered paths.py declares them (no imports there)."""
    return list(runpy.run_path(str(PACKAGE / "paths.py"))["ECHO_ENDPOINTS"].values())


def main() -> int:
    answer = ANSWERS["rejection_strategy"]
    keep_screenshot(answer)
    prune(chosen_strategies(answer))
    token = write_env_file()
    write_answers()
    slug = ANSWERS["project_slug"]
    package = ANSWERS["package_name"]
    urls = "\n".join(f"    ws://127.0.0.1:8000{path}?token={token}" for path in echo_paths())
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
