"""Shape the freshly rendered project for the chosen options.

- Keep only the files the answers call for: ``MANIFEST`` below is the one list
  of files that not every project gets (the template's tests read it too). A
  kept file may be renamed, e.g. ``auth.jwt.py`` becomes ``auth.py``.
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
import secrets
import subprocess
import sys
from pathlib import Path, PurePath

# The answers as JSON data: tojson escapes every ' so this raw string cannot end early.
ANSWERS = json.loads(r'{{ cookiecutter | tojson }}')  # fmt: skip

PACKAGE = f"src/{ANSWERS['package_name']}"
# cookiecutter (2.2+) always sets `_repo_dir`; cruft, which calls cookiecutter's
# generate_files() with a context of its own, never does.
UNDER_CRUFT = "_repo_dir" not in ANSWERS

# Which files a project gets. Every file of the skeleton is in every project unless
# it is listed here: (path in the skeleton, what the answers must be, path in the
# project when the file is renamed). A condition maps an answer to the values that
# keep the file; a strategy's files are kept for that strategy and for "both".
PRE_ACCEPT = {"rejection_strategy": ("pre_accept", "both")}
ACCEPT_THEN_CLOSE = {"rejection_strategy": ("accept_then_close", "both")}
API_TOKENS = {"authentication": ("api_tokens",)}
JWT = {"authentication": ("jwt",)}
BROWSER_DEMO = {"browser_demo": (True,)}
MANIFEST: list[tuple[str, dict[str, tuple[object, ...]], str | None]] = [
    (f"{PACKAGE}/pre_accept.py", PRE_ACCEPT, None),
    ("tests/test_pre_accept.py", PRE_ACCEPT, None),
    ("tests/test_live_pre_accept.py", PRE_ACCEPT, None),
    ("tests/no_denial_extension_app.py", PRE_ACCEPT, None),
    ("docs/pre-accept.md", PRE_ACCEPT, None),
    (f"{PACKAGE}/accept_then_close.py", ACCEPT_THEN_CLOSE, None),
    ("tests/test_accept_then_close.py", ACCEPT_THEN_CLOSE, None),
    ("tests/test_live_accept_then_close.py", ACCEPT_THEN_CLOSE, None),
    ("tests/crash_app.py", ACCEPT_THEN_CLOSE, None),
    ("docs/accept-then-close.md", ACCEPT_THEN_CLOSE, None),
    (f"{PACKAGE}/auth.api_tokens.py", API_TOKENS, f"{PACKAGE}/auth.py"),
    ("tests/credentials.api_tokens.py", API_TOKENS, "tests/credentials.py"),
    ("tests/test_api_tokens.py", API_TOKENS, None),
    ("docs/authentication.api_tokens.md", API_TOKENS, "docs/authentication.md"),
    (f"{PACKAGE}/auth.jwt.py", JWT, f"{PACKAGE}/auth.py"),
    (f"{PACKAGE}/jwks.py", JWT, None),
    ("tests/credentials.jwt.py", JWT, "tests/credentials.py"),
    ("tests/test_jwt.py", JWT, None),
    ("tests/test_jwks.py", JWT, None),
    ("tests/jwks_server.py", JWT, None),
    ("tests/test_expiry.py", JWT, None),
    ("tests/test_identity_providers.jwt.py", JWT, "tests/test_identity_providers.py"),
    ("tests/test_oidc_provider.jwt.py", JWT, "tests/test_oidc_provider.py"),
    ("tests/test_inband_refresh.jwt.py", JWT, "tests/test_inband_refresh.py"),
    ("docs/authentication.jwt.md", JWT, "docs/authentication.md"),
    (f"{PACKAGE}/routes/demo.py", BROWSER_DEMO, None),
    (f"{PACKAGE}/routes/demo.html", BROWSER_DEMO, None),
    ("tests/test_browser_demo.py", BROWSER_DEMO, None),
    ("tests/test_js_client.py", BROWSER_DEMO, None),  # playwright comes with the demo
    *[
        (
            f"docs/screenshots/browser-demo-{strategy}-{authentication}.png",
            {
                **BROWSER_DEMO,
                "rejection_strategy": (strategy,),
                "authentication": (authentication,),
            },
            "docs/browser-demo.png",
        )
        for strategy in ("both", "pre_accept", "accept_then_close")
        for authentication in ("api_tokens", "jwt")
    ],
    (".github/workflows/ci.yml", {"github_ci": (True,)}, None),
    ("Dockerfile", {"docker": (True,)}, None),
    (".dockerignore", {"docker": (True,)}, None),
    ("compose.yaml", {"docker": (True,)}, None),
    (".pre-commit-config.yaml", {"pre_commit": (True,)}, None),
]


def wanted(condition: dict[str, tuple[object, ...]], answers: dict[str, object]) -> bool:
    return all(answers[option] in values for option, values in condition.items())


def shape(answers: dict[str, object]) -> None:
    """Remove the listed files these answers do not call for; rename the others."""
    for path, condition, renamed in MANIFEST:
        if not wanted(condition, answers):
            Path(path).unlink()
        elif renamed is not None:
            Path(path).rename(renamed)
    for folder in (Path(".github", "workflows"), Path(".github"), Path("docs", "screenshots")):
        if folder.is_dir() and not any(folder.iterdir()):
            folder.rmdir()


# cookiecutter's built-in abbreviations, for a template typed as `gh:owner/repo`.
ABBREVIATIONS = {
    "gh": "https://github.com/{0}.git",
    "gl": "https://gitlab.com/{0}.git",
    "bb": "https://bitbucket.org/{0}",
}


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
    """The demo's echo routes (routes/echo.py)."""
    if ANSWERS["rejection_strategy"] == "both":
        return ["/ws/pre-accept/echo", "/ws/accept-then-close/echo"]
    return ["/ws/echo"]


def try_it(setting: str, package: str) -> str:
    """How to connect once the app runs, with the secret just written to .env."""
    paths = echo_paths()
    if ANSWERS["authentication"] == "jwt":
        intro = "A random WS_JWT_SECRET was written to .env (never commit it). Mint a token"
        token = f"$(.venv/bin/python -m {package} token --sub alice --scope admin)"
    else:
        intro = "A random token was written to .env (never commit it). Take it"
        token = setting.split(":")[1]
    connect = f".venv/bin/python -m {package} connect ws://127.0.0.1:8000{paths[0]}"
    return (
        f"{intro}\nand connect through each channel (the app must be running):\n"
        f"    TOKEN={token}\n"
        + "\n".join(
            f'    {connect} --token "$TOKEN" --channel {channel} --send hello'
            for channel in ("header", "subprotocol", "ticket", "query")
        )
        + f"\n    {connect} --send hello   # refused: no credential"
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
Docs: {slug}/README.md, {slug}/docs/overview.md, {slug}/docs/clients.md
"""


def main() -> int:
    shape(ANSWERS)
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
