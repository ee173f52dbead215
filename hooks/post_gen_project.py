"""Shape the freshly rendered project for the chosen options.

- Pick whole files: ``name.<choice>.py`` becomes ``name.py`` for the chosen
  strategy or authentication and is removed for the others; files that belong
  only to an unchosen strategy or option are removed. The generated code carries
  no dead branches and no Jinja conditionals.
- Write a ``.env`` with a random secret (API token or JWT secret): the app
  refuses to start without one, and a per-project random secret is never a
  shared default.
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

# Options whose choices come as whole-file variants: `name.<choice>.<ext>`.
VARIANTS = {
    "rejection_strategy": ("both", "pre_accept", "accept_then_close"),
    "authentication": ("api_tokens", "jwt"),
}

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

# Files that exist only for one authentication (beside the `name.<choice>.py` variants).
AUTHENTICATION_FILES = {
    "api_tokens": [
        Path("tests", "test_api_tokens.py"),
    ],
    "jwt": [
        PACKAGE / "jwks.py",
        Path("tests", "test_jwt.py"),
        Path("tests", "test_jwks.py"),
        Path("tests", "jwks_server.py"),
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


def pick_variants() -> None:
    """Keep the chosen variant of every `name.<choice>.<ext>` file, as `name.<ext>`."""
    for option, choices in VARIANTS.items():
        for path in sorted(Path().rglob("*.*.*")):
            stem, choice, extension = path.name.rsplit(".", 2)
            if choice not in choices:
                continue
            if choice == ANSWERS[option]:
                path.rename(path.with_name(f"{stem}.{extension}"))
            else:
                path.unlink()


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
    for authentication, paths in AUTHENTICATION_FILES.items():
        if authentication != ANSWERS["authentication"]:
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
    """Copy .env.example to .env with a fresh secret; return the line that changed."""
    if ANSWERS["authentication"] == "jwt":
        setting = f"WS_JWT_SECRET={secrets.token_urlsafe(48)}"
    else:
        setting = f"WS_AUTH_TOKENS=dev:{secrets.token_urlsafe(32)}:admin"
    name = setting.split("=", 1)[0] + "="
    example = Path(".env.example").read_text(encoding="utf-8")
    Path(".env").write_text(example.replace(name, setting, 1), encoding="utf-8")
    return setting


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


def try_it(setting: str, package: str) -> str:
    """How to connect once the app runs, with the secret just written to .env."""
    paths = echo_paths()
    if ANSWERS["authentication"] == "jwt":
        return (
            "A random WS_JWT_SECRET was written to .env (never commit it). Mint a token\n"
            f"and connect (the app must be running):\n"
            f"    TOKEN=$(.venv/bin/python -m {package} token --sub alice --scope admin)\n"
            + "\n".join(
                f'    .venv/bin/python -m websockets "ws://127.0.0.1:8000{path}?token=$TOKEN"'
                for path in paths
            )
        )
    token = setting.split(":")[1]
    return "A random token was written to .env (never commit it). Try:\n" + "\n".join(
        f"    ws://127.0.0.1:8000{path}?token={token}" for path in paths
    )


def main() -> int:
    strategy = ANSWERS["rejection_strategy"]
    pick_variants()
    keep_screenshot(strategy)
    prune(chosen_strategies(strategy))
    setting = write_env_file()
    write_answers()
    slug = ANSWERS["project_slug"]
    package = ANSWERS["package_name"]
    setup = (
        "python3 -m venv .venv && .venv/bin/python -m pip install -q -U pip"
        " && .venv/bin/python -m pip install -q -e . --group dev"
    )
    print(
        f"""
Created {slug}/ (rejection strategy: {strategy}, authentication: {ANSWERS["authentication"]}).

In {slug}/, run the app (sets up .venv, then serves on http://127.0.0.1:8000):
    {setup} && .venv/bin/python -m {package}

Run its tests (same set-up, then pytest):
    {setup} && .venv/bin/python -m pytest

{try_it(setting, package)}
Docs: {slug}/README.md, {slug}/docs/overview.md
"""
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
