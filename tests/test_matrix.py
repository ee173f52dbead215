"""Bake every option combination; prune, lint and parse it; run generated test suites."""

import functools
import json
import re
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml
from helpers import (
    AUTHENTICATIONS,
    COMBINATIONS,
    PYTHON_VERSIONS,
    SKELETON,
    SUITE_COMBINATIONS,
    clean_env,
    install_project,
    leftover_jinja,
    load_hook,
    python_for,
    ruff,
    summary_counts,
)
from vulture import Vulture

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover
    import tomli as tomllib

PKG = "websocket_gatekeeper"

Baked = tuple[dict[str, Any], Path]


def fresh_bake(cookies_session, answers: dict[str, Any]) -> Path:
    result = cookies_session.bake(extra_context=answers)
    assert result.exit_code == 0, result.exception
    assert result.exception is None
    return result.project_path


@functools.cache
def _bake(cookies_session, key: str) -> Path:
    return fresh_bake(cookies_session, json.loads(key))


def bake(cookies_session, answers: dict[str, Any]) -> Path:
    """Bake once per worker and answers: the tests share the project and only read it."""
    return _bake(cookies_session, json.dumps(answers, sort_keys=True))


@pytest.fixture(scope="session", params=COMBINATIONS)
def baked(request: pytest.FixtureRequest, cookies_session) -> Baked:
    return request.param, bake(cookies_session, request.param)


def expected_files(answers: dict[str, Any]) -> set[str]:
    """The project's files as the hook's manifest says these answers get them."""
    hook = load_hook("post_gen_project", **answers)
    manifest = {path: (condition, renamed) for path, condition, renamed in hook["MANIFEST"]}
    files = set()
    for path in SKELETON.rglob("*"):
        name = str(path.relative_to(SKELETON)).replace("{{cookiecutter.package_name}}", PKG)
        if not path.is_file() or "__pycache__" in path.parts:
            continue
        condition, renamed = manifest.get(name, ({}, None))
        if hook["wanted"](condition, answers):
            files.add(renamed or name)
    return files


def test_the_project_has_exactly_the_files_of_the_manifest(baked: Baked) -> None:
    answers, project = baked
    made = {".env", ".cruft.json"}  # written by the hook itself
    files = {
        str(path.relative_to(project))
        for path in project.rglob("*")
        if path.is_file() and "__pycache__" not in path.parts
    }
    assert sorted(files - made) == sorted(expected_files({**answers, "package_name": PKG}))


def test_no_leftover_jinja(baked: Baked) -> None:
    _, project = baked
    assert leftover_jinja(project) == []


def test_ruff_check_is_clean(baked: Baked) -> None:
    _, project = baked
    result = ruff("check", "--no-cache", ".", cwd=project)
    assert result.returncode == 0, result.stdout + result.stderr


def test_ruff_format_is_clean(baked: Baked) -> None:
    _, project = baked
    result = ruff("format", "--check", "--diff", "--no-cache", ".", cwd=project)
    assert result.returncode == 0, result.stdout + result.stderr


# -- Nothing of an unchosen option is left: not named anywhere, no dead code -----------

# Words that name an option the project did not choose, as regular expressions
# (case-insensitive). Spelled loosely (`accept_then_close`, `accept-then-close`,
# `AcceptThenClose`) but specific: no generic word ("token", "close", "HTTP") is here.
ACCEPT_THEN_CLOSE = r"accept[-_ ]?then[-_ ]?close"
PRE_ACCEPT = r"pre[-_ ]?accept"
JWT = r"jwt|jwk|\b[HRE]S256\b|token_expired|--sub\b"
API_TOKENS = r"WS_AUTH_TOKENS|\bapi[-_ ]?tokens?\b"
BROWSER_DEMO = r"browser[-_ ]demo|demo[-_ ]page|demo\.html|playwright"
DOCKER = r"Dockerfile|\.dockerignore|docker[-_ ]compose|compose\.ya?ml"
GITHUB_CI = r"\.github/|GitHub Actions|\bci\.yml"
PRE_COMMIT = r"pre-commit"


def unchosen_words(answers: dict[str, Any]) -> dict[str, str]:
    """What must not be named in a project with these answers: {why: pattern}."""
    words = {}
    if answers["rejection_strategy"] == "pre_accept":
        # (Close codes 44xx may appear: after accept, every refusal is a close frame.)
        words["accept_then_close (unchosen)"] = ACCEPT_THEN_CLOSE
    if answers["rejection_strategy"] == "accept_then_close":
        words["pre_accept (unchosen)"] = PRE_ACCEPT
    if answers["authentication"] == "api_tokens":
        words["jwt (unchosen)"] = JWT
    if answers["authentication"] == "jwt":
        words["api_tokens (unchosen)"] = API_TOKENS
    off = {"browser_demo": BROWSER_DEMO, "docker": DOCKER, "github_ci": GITHUB_CI}
    words.update({f"no {name}": off[name] for name in off if not answers[name]})
    if not answers["pre_commit"]:
        words["no pre_commit"] = PRE_COMMIT
    return words


def documents(project: Path) -> list[Path]:
    """Code and docs a reader of the project sees (not generated caches or images)."""
    found = [project / "README.md", project / ".env.example"]
    for folder in ("docs", "src", "tests", "deploy"):
        found += sorted(p for p in (project / folder).rglob("*") if p.is_file())
    skip = {".png", ".pyc"}
    return [path for path in found if path.suffix not in skip and "__pycache__" not in path.parts]


def test_no_unchosen_option_is_named(baked: Baked) -> None:
    answers, project = baked
    words = {
        why: re.compile(pattern, re.IGNORECASE) for why, pattern in unchosen_words(answers).items()
    }
    found = []
    for path in documents(project):
        for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
            for why, pattern in words.items():
                found += [
                    f"{path.relative_to(project)}:{number}: {m.group()!r} ({why})"
                    for m in pattern.finditer(line)
                ]
    assert found == [], "\n".join(found)


@functools.cache
def vulture_scan(src: Path) -> Vulture:
    # `cls` of a pydantic `@field_validator` classmethod is required, never "unused".
    scan = Vulture(ignore_names=["cls"])
    scan.scavenge([str(src)])
    return scan


def unused(src: Path, min_confidence: int) -> dict[str, str]:
    """{`file:name`: vulture's report line} for what vulture finds unused in ``src``."""
    return {
        f"{item.filename.relative_to(src)}:{item.name}": (
            f"{item.filename.relative_to(src)}:{item.first_lineno}: {item.message}"
            f" ({item.confidence}% confidence)"
        )
        for item in vulture_scan(src).get_unused_code(min_confidence=min_confidence)
    }


def defined(src: Path) -> set[str]:
    """`file:name` of everything defined in ``src`` (not in vulture's own whitelists)."""
    scan = vulture_scan(src)
    items = [
        *scan.defined_attrs, *scan.defined_classes, *scan.defined_funcs, *scan.defined_imports,
        *scan.defined_methods, *scan.defined_props, *scan.defined_vars,
    ]  # fmt: skip
    return {
        f"{item.filename.relative_to(src)}:{item.name}"
        for item in items
        if item.filename.is_relative_to(src)
    }


def fuller_siblings(answers: dict[str, Any]) -> list[dict[str, Any]]:
    """The projects that keep more of the code: both strategies, the other authentication,
    the browser demo on. Python version, CI, Docker and pre-commit do not change src/."""
    canonical = {**answers, "python_version": PYTHON_VERSIONS[0]}
    canonical.update(github_ci=True, docker=True, pre_commit=True)
    siblings = [{**canonical, "authentication": a} for a in AUTHENTICATIONS]
    siblings += [{**canonical, "rejection_strategy": "both"}, {**canonical, "browser_demo": True}]
    own = {k: canonical[k] for k in ("rejection_strategy", "authentication", "browser_demo")}
    return [s for s in siblings if any(s[k] != v for k, v in own.items())]


def test_vulture_finds_no_dead_code(baked: Baked, cookies_session) -> None:
    """Two checks on src/ with vulture.

    1. At 80% confidence: only what vulture is sure of (unused imports 90%, unused
       arguments and unreachable code 100%), so any finding is a real defect. Below
       80 vulture reports every name that FastAPI or pydantic reach by decorator or
       protocol (routes, validators, `model_config`, `BaseUser` properties) as
       "60% unused", so 60 cannot be an absolute pass/fail bar.
    2. At 60%, relative: a name vulture finds unused here but used in a project
       that keeps more code (both strategies, the other authentication, the demo
       on) is dead only because of pruning, e.g. a helper only the removed strategy
       called. Framework-reached names are "unused" in both and cancel out.
    """
    answers, project = baked
    src = project / "src"
    found = list(unused(src, 80).values())
    for sibling_answers in fuller_siblings(answers):
        sibling = bake(cookies_session, sibling_answers) / "src"
        used_there = defined(sibling) - unused(sibling, 60).keys()
        found += [
            f"{line} [used in the {describe(sibling_answers)} project]"
            for key, line in unused(src, 60).items()
            if key in used_there
        ]
    assert found == [], "\n".join(found)


def describe(answers: dict[str, Any]) -> str:
    demo = "demo" if answers["browser_demo"] else "no demo"
    return f"{answers['rejection_strategy']}, {answers['authentication']}, {demo}"


# -- Options, tools and files -----------------------------------------------------------


def test_python_version_is_pinned_for_tools(baked: Baked) -> None:
    answers, project = baked
    pyproject = tomllib.loads((project / "pyproject.toml").read_text(encoding="utf-8"))
    assert pyproject["project"]["requires-python"] == ">=3.10"
    assert pyproject["tool"]["ruff"]["target-version"] == "py310"
    python_version = (project / ".python-version").read_text(encoding="utf-8")
    assert python_version == answers["python_version"] + "\n"
    dev = " ".join(pyproject["dependency-groups"]["dev"])
    assert ("playwright" in dev) == answers["browser_demo"]
    dependencies = " ".join(pyproject["project"]["dependencies"]).lower()
    assert ("pyjwt" in dependencies) == (answers["authentication"] == "jwt")


def test_env_file_has_a_fresh_random_secret(baked: Baked) -> None:
    answers, project = baked
    env = dict(
        line.split("=", 1)
        for line in (project / ".env").read_text(encoding="utf-8").splitlines()
        if line and not line.startswith("#")
    )
    secret, other = ("WS_JWT_SECRET", "WS_AUTH_TOKENS")
    if answers["authentication"] == "api_tokens":
        secret, other = other, secret
    assert len(env[secret]) >= 32
    assert other not in env
    assert ".env" in (project / ".gitignore").read_text(encoding="utf-8").splitlines()


def test_github_workflow_lints_and_tests_with_uv(baked: Baked) -> None:
    answers, project = baked
    if not answers["github_ci"]:
        return
    workflow = yaml.safe_load((project / ".github/workflows/ci.yml").read_text(encoding="utf-8"))
    job = workflow["jobs"]["test"]
    assert answers["python_version"] in job["strategy"]["matrix"]["python-version"]
    assert "3.10" in job["strategy"]["matrix"]["python-version"]
    setup = next(s for s in job["steps"] if s.get("uses", "").startswith("astral-sh/setup-uv"))
    assert setup["with"]["enable-cache"] is True
    assert setup["with"]["python-version"] == "${{ matrix.python-version }}"
    commands = [step.get("run", "") for step in job["steps"]]
    lint = ["uv run ruff check .", "uv run ruff format --check ."]
    for expected in ("uv sync", *lint, "uv run pytest"):
        assert expected in commands


def test_dockerfile_is_slim_uv_non_root_with_healthcheck(baked: Baked) -> None:
    answers, project = baked
    if not answers["docker"]:
        return
    dockerfile = (project / "Dockerfile").read_text(encoding="utf-8")
    instructions = [
        line.split(maxsplit=1)
        for line in re.sub(r"\\\n\s*", " ", dockerfile).splitlines()
        if line.strip() and not line.startswith("#")
    ]
    by_name: dict[str, list[str]] = {}
    for name, *rest in instructions:
        by_name.setdefault(name.upper(), []).append(rest[0] if rest else "")
    assert by_name["FROM"] == [f"python:{answers['python_version']}-slim"]
    assert any("astral-sh/uv" in copy for copy in by_name["COPY"])
    assert any("uv pip install" in run for run in by_name["RUN"])
    assert by_name["USER"]
    assert by_name["USER"][-1].split(":")[0] not in {"root", "0"}
    assert "/health" in by_name["HEALTHCHECK"][0]
    assert by_name["CMD"] == [f'["python", "-m", "{PKG}", "--host", "0.0.0.0", "--port", "8000"]']
    launcher = (project / "src" / PKG / "__main__.py").read_text(encoding="utf-8")
    assert "ForwardedClients" in launcher  # what the CMD runs: client addresses from a proxy
    assert ".env" in (project / ".dockerignore").read_text(encoding="utf-8").splitlines()


def test_pre_commit_runs_ruff(baked: Baked) -> None:
    answers, project = baked
    if not answers["pre_commit"]:
        return
    config = yaml.safe_load((project / ".pre-commit-config.yaml").read_text(encoding="utf-8"))
    [repo] = config["repos"]
    assert repo["repo"] == "https://github.com/astral-sh/ruff-pre-commit"
    assert [hook["id"] for hook in repo["hooks"]] == ["ruff-check", "ruff-format"]


# -- The generated project's own test suite ----------------------------------------------


# Without the demo (and the other yes/no pieces), the Python differs from the same
# project with them only in how main.py assembles the app, and that project's whole
# suite runs too: here the tests that build the app and talk to it in process and
# on the wire run, with the connection governance whose cancellation differs by
# Python version; not the Redis, Sentinel, Cluster, nginx, hostile-server and
# flood tests, which exercise modules that are the same byte for byte.
ASSEMBLY_TESTS = [
    "test_routes.py", "test_health.py", "test_ready.py", "test_metrics.py", "test_echo.py",
    "test_settings.py", "test_cli.py", "test_admission.py", "test_credentials.py",
    "test_pre_accept.py", "test_accept_then_close.py", "test_live_pre_accept.py",
    "test_live_accept_then_close.py", "test_governance.py", "test_deadlines.py", "test_expiry.py",
    "test_inband_refresh.py", "test_api_tokens.py", "test_jwt.py",
]  # fmt: skip


def suite_files(project: Path, answers: dict[str, Any]) -> list[str]:
    if answers["browser_demo"]:
        return []  # all of them
    return [f"tests/{name}" for name in ASSEMBLY_TESTS if (project / "tests" / name).exists()]


@pytest.mark.matrix
@pytest.mark.parametrize("answers", SUITE_COMBINATIONS)
def test_generated_test_suite_passes(answers: dict[str, Any], cookies_session) -> None:
    project = fresh_bake(cookies_session, answers)  # its own copy: the suite writes files
    python = install_project(project, python_for(answers["python_version"]))
    files = suite_files(project, answers)
    result = subprocess.run(
        [str(python), "-m", "pytest", "-q", "-rs", "-p", "no:cacheprovider", *files],
        cwd=project, capture_output=True, text=True, env=clean_env(), timeout=1500, check=False,
    )  # fmt: skip
    output = result.stdout + result.stderr
    counts = summary_counts(result.stdout)
    print(f"{answers}: {result.stdout.strip().splitlines()[-1]}")
    assert result.returncode == 0, output  # 5 would mean "no tests ran": a failure too
    assert counts.get("passed", 0) > 100, output
    assert counts.get("failed", 0) == counts.get("error", 0) == 0, output


def test_the_assembly_tests_are_test_files_of_the_skeleton() -> None:
    # A misspelt name would silently run less: suite_files() keeps only what exists.
    names = {path.name.replace(".jwt.py", ".py") for path in (SKELETON / "tests").glob("test_*.py")}
    assert set(ASSEMBLY_TESTS) <= names
