"""Shape the freshly rendered project for the chosen options.

- Pick whole files: ``name.<choice>.py`` becomes ``name.py`` for the chosen
  strategy or authentication and is removed for the others; files that belong
  only to an unchosen strategy or option are removed. The generated code carries
  no dead branches and no Jinja conditionals.
- Write a ``.env`` with a random secret (API token or JWT secret): the app
  refuses to start without one, and a per-project random secret is never a
  shared default.
- Keep the answers, the template's location and its git commit in
  ``.cruft.json``, so ``cruft check`` and ``cruft update`` work on a project made
  with plain cookiecutter (under cruft, cruft writes that file itself).
- Print the next steps (not under cruft: `cruft update` runs this hook in
  throw-away folders).
"""

import json
import os
import runpy
import secrets
import shutil
import subprocess
import sys
from pathlib import Path, PurePath

# The answers as JSON data: tojson escapes every ' so this raw string cannot end early.
ANSWERS = json.loads(r'{{ cookiecutter | tojson }}')  # fmt: skip

PACKAGE = Path("src", ANSWERS["package_name"])
# cookiecutter (2.2+) always sets `_repo_dir`; cruft, which calls cookiecutter's
# generate_files() with a context of its own, never does.
UNDER_CRUFT = "_repo_dir" not in ANSWERS

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
        Path("tests", "test_expiry.py"),
        Path("tests", "loop_stats_app.py"),
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
    "docker": [Path("Dockerfile"), Path(".dockerignore"), Path("compose.yaml")],
    "pre_commit": [Path(".pre-commit-config.yaml")],
}
SCREENSHOTS = Path("docs", "screenshots")  # one per strategy; the chosen one is kept

# cookiecutter's built-in abbreviations, for a template typed as `gh:owner/repo`.
ABBREVIATIONS = {
    "gh": "https://github.com/{0}.git",
    "gl": "https://gitlab.com/{0}.git",
    "bb": "https://bitbucket.org/{0}",
}


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
    # A listed path that does not exist is a template bug, caught by a template test
    # (tests/test_hooks.py); here it must not stop generation.
    for path in paths:
        if path.is_dir():
            shutil.rmtree(path)
        else:
            path.unlink(missing_ok=True)


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
    """The demo page differs per strategy and authentication: keep the chosen one's."""
    if ANSWERS["browser_demo"]:
        chosen = f"browser-demo-{answer}-{ANSWERS['authentication']}.png"
        (SCREENSHOTS / chosen).rename(Path("docs", "browser-demo.png"))
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


def git(folder: Path, *args: str) -> str | None:
    """What `git -C folder ...` prints, or None: no git, not a repository, no such thing."""
    try:
        done = subprocess.run(
            ["git", "-C", str(folder), *args], capture_output=True, text=True, check=False
        )
    except OSError:
        return None
    return done.stdout.strip() if done.returncode == 0 else None


def template_folder() -> Path | None:
    """The template's folder on this machine (cookiecutter's `_repo_dir`), absolute."""
    repo_dir = Path(ANSWERS["_repo_dir"])
    if repo_dir.is_absolute():
        return repo_dir.resolve()
    # A local template comes as typed, relative to a folder the hook does not run in.
    # cookiecutter runs hooks from inside the template's folder: ask the parent
    # process where it is (Linux), else resolve against the shell's folder.
    candidates = [Path(f"/proc/{os.getppid()}/cwd"), Path(os.environ.get("PWD", "/"), repo_dir)]
    return next(
        (path.resolve() for path in candidates if (path / "cookiecutter.json").is_file()), None
    )


def clone_url(typed: str, origin: str | None) -> str:
    """A URL git can clone: the clone's own origin, else the typed one with abbreviations
    expanded and cookiecutter's `git+` prefix removed (`git+file:///x` -> `file:///x`)."""
    if origin:
        return origin
    prefix, _, rest = typed.partition(":")
    if prefix in ABBREVIATIONS:
        return ABBREVIATIONS[prefix].format(rest)
    return typed.removeprefix("git+")


def template_source() -> dict[str, str | None]:
    """Where cruft can fetch the template again, and the commit this project came from."""
    typed, repo_dir = PurePath(ANSWERS["_template"]), PurePath(ANSWERS["_repo_dir"])
    folder = template_folder()
    tracked = folder and git(folder, "ls-files", "--error-unmatch", "cookiecutter.json")
    commit = git(folder, "rev-parse", "HEAD") if folder and tracked else None
    top = git(folder, "rev-parse", "--show-toplevel") if folder and tracked else None
    directory = os.path.relpath(folder, top) if folder and top and folder != Path(top) else None
    # A local folder is used where it is (`_repo_dir` is the typed path, or below it);
    # anything else (a URL, `gh:...`) was cloned by cookiecutter into its cache.
    if typed in (repo_dir, *repo_dir.parents):
        location = top or str(folder or typed)
    else:
        origin = git(folder, "remote", "get-url", "origin") if folder else None
        location = clone_url(ANSWERS["_template"], origin)
    return {"template": location, "commit": commit, "directory": directory}


def write_answers() -> None:
    """Keep the answers in .cruft.json, so `cruft check` / `cruft update` work later."""
    source = template_source()
    machine_specific = {"_output_dir", "_repo_dir", "__prompts__"}
    answers = {key: value for key, value in ANSWERS.items() if key not in machine_specific}
    answers.update(_template=source["template"], _commit=source["commit"])
    answers = dict(sorted(answers.items()))  # stable, whatever order the answers came in
    cruft = {
        "template": source["template"],
        "commit": source["commit"],
        "checkout": ANSWERS.get("_checkout"),
        "context": {"cookiecutter": answers},
        "directory": source["directory"],
        "skip": [".env", "docs/browser-demo.png"],
    }
    text = json.dumps(cruft, ensure_ascii=False, indent=2)  # as cruft writes it
    Path(".cruft.json").write_text(text + "\n", encoding="utf-8")


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


def next_steps(setting: str) -> str:
    slug, package = ANSWERS["project_slug"], ANSWERS["package_name"]
    setup = (
        "python3 -m venv .venv && .venv/bin/python -m pip install -q -U pip"
        " && .venv/bin/python -m pip install -q -e . --group dev"
    )
    chosen = f"rejection strategy: {ANSWERS['rejection_strategy']}"
    return f"""
Created {slug}/ ({chosen}, authentication: {ANSWERS["authentication"]}).

In {slug}/, run the app (sets up .venv, then serves on http://127.0.0.1:8000):
    {setup} && .venv/bin/python -m {package}

Run its tests (same set-up, then pytest):
    {setup} && .venv/bin/python -m pytest

{try_it(setting, package)}
Docs: {slug}/README.md, {slug}/docs/overview.md
"""


def main() -> int:
    strategy = ANSWERS["rejection_strategy"]
    pick_variants()
    keep_screenshot(strategy)
    prune(chosen_strategies(strategy))
    setting = write_env_file()
    if UNDER_CRUFT:
        # cruft writes .cruft.json itself, and `cruft update` runs this hook twice in
        # throw-away folders: next steps quoting a secret that is not in the project's
        # .env would mislead. The project's README has the same steps.
        return 0
    write_answers()
    print(next_steps(setting))
    return 0


if __name__ == "__main__":
    sys.exit(main())
