"""Bake every option combination; prune, lint and parse it; run generated test suites."""

import re
import subprocess
import sys
from pathlib import Path

import pytest
import yaml
from helpers import (
    COMBINATIONS,
    SUITE_COMBINATIONS,
    clean_env,
    install_project,
    leftover_jinja,
    python_for,
    ruff,
    summary_counts,
)

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover
    import tomli as tomllib

PKG = "websocket_gatekeeper"

# Files that belong to exactly one strategy.
STRATEGY_FILES = {
    "pre_accept": [
        f"src/{PKG}/pre_accept.py",
        f"src/{PKG}/routes/pre_accept_echo.py",
        "tests/test_pre_accept.py",
        "tests/test_live_pre_accept.py",
        "tests/no_denial_extension_app.py",
        "benchmarks/strategy_pre_accept.py",
        "docs/pre-accept.md",
    ],
    "accept_then_close": [
        f"src/{PKG}/accept_then_close.py",
        f"src/{PKG}/routes/accept_then_close_echo.py",
        "tests/test_accept_then_close.py",
        "tests/test_live_accept_then_close.py",
        "tests/crash_app.py",
        "benchmarks/strategy_accept_then_close.py",
        "docs/accept-then-close.md",
    ],
}
STRATEGY_WORDS = {
    "pre_accept": ("PreAcceptGuard", "pre_accept_echo", "/ws/pre-accept", "PRE_ACCEPT"),
    "accept_then_close": ("accept_then_close(", "accept_then_close_echo", "ACCEPT_THEN_CLOSE"),
}
# Files that belong to exactly one yes/no option.
OPTION_FILES = {
    "browser_demo": [
        f"src/{PKG}/routes/demo.py",
        f"src/{PKG}/routes/demo.html",
        "tests/test_browser_demo.py",
        "docs/browser-demo.png",
    ],
    "github_ci": [".github/workflows/ci.yml"],
    "docker": ["Dockerfile", ".dockerignore"],
    "pre_commit": [".pre-commit-config.yaml"],
}

Baked = tuple[dict, Path]


def bake(cookies_session, answers: dict) -> Path:
    result = cookies_session.bake(extra_context=answers)
    assert result.exit_code == 0, result.exception
    assert result.exception is None
    return result.project_path


@pytest.fixture(scope="session", params=COMBINATIONS)
def baked(request: pytest.FixtureRequest, cookies_session) -> Baked:
    return request.param, bake(cookies_session, request.param)


def chosen(strategy: str) -> set[str]:
    return set(STRATEGY_FILES) if strategy == "both" else {strategy}


def test_only_the_chosen_files_exist(baked: Baked) -> None:
    answers, project = baked
    for strategy, files in STRATEGY_FILES.items():
        for name in files:
            wanted = strategy in chosen(answers["rejection_strategy"])
            assert (project / name).exists() == wanted, name
    for option, files in OPTION_FILES.items():
        for name in files:
            assert (project / name).exists() == answers[option], name
    assert not (project / "docs" / "screenshots").exists()


def test_no_dead_code_of_the_unchosen_strategy(baked: Baked) -> None:
    answers, project = baked
    if answers["rejection_strategy"] == "both":
        return
    unchosen = ({"pre_accept", "accept_then_close"} - chosen(answers["rejection_strategy"])).pop()
    for path in project.rglob("*.py"):
        text = path.read_text(encoding="utf-8")
        for word in STRATEGY_WORDS[unchosen]:
            assert word not in text, f"{path.relative_to(project)} mentions {word}"


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


def test_python_version_is_pinned_for_tools(baked: Baked) -> None:
    answers, project = baked
    pyproject = tomllib.loads((project / "pyproject.toml").read_text(encoding="utf-8"))
    assert pyproject["project"]["requires-python"] == ">=3.10"
    assert pyproject["tool"]["ruff"]["target-version"] == "py310"
    python_version = (project / ".python-version").read_text(encoding="utf-8")
    assert python_version == answers["python_version"] + "\n"
    dev = " ".join(pyproject["dependency-groups"]["dev"])
    assert ("playwright" in dev) == answers["browser_demo"]


def test_env_file_has_a_fresh_random_token(baked: Baked) -> None:
    _, project = baked
    env = dict(
        line.split("=", 1)
        for line in (project / ".env").read_text(encoding="utf-8").splitlines()
        if line and not line.startswith("#")
    )
    assert len(env["WS_AUTH_TOKENS"]) >= 32
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
    assert by_name["USER"][-1] not in {"root", "0"}
    assert "/health" in by_name["HEALTHCHECK"][0]
    assert by_name["CMD"] == [f'["python", "-m", "{PKG}", "--host", "0.0.0.0", "--port", "8000"]']
    launcher = (project / "src" / PKG / "__main__.py").read_text(encoding="utf-8")
    assert "proxy_headers=True" in launcher  # what the CMD runs: uvicorn with proxy headers
    assert ".env" in (project / ".dockerignore").read_text(encoding="utf-8").splitlines()


def test_pre_commit_runs_ruff(baked: Baked) -> None:
    answers, project = baked
    if not answers["pre_commit"]:
        return
    config = yaml.safe_load((project / ".pre-commit-config.yaml").read_text(encoding="utf-8"))
    [repo] = config["repos"]
    assert repo["repo"] == "https://github.com/astral-sh/ruff-pre-commit"
    assert [hook["id"] for hook in repo["hooks"]] == ["ruff-check", "ruff-format"]


@pytest.mark.matrix
@pytest.mark.parametrize("answers", SUITE_COMBINATIONS)
def test_generated_test_suite_passes(answers: dict, cookies_session) -> None:
    project = bake(cookies_session, answers)
    python = install_project(project, python_for(answers["python_version"]))
    result = subprocess.run(
        [str(python), "-m", "pytest", "-q", "-rs", "-p", "no:cacheprovider"],
        cwd=project, capture_output=True, text=True, env=clean_env(), timeout=900, check=False,
    )  # fmt: skip
    output = result.stdout + result.stderr
    counts = summary_counts(result.stdout)
    print(f"{answers}: {result.stdout.strip().splitlines()[-1]}")
    assert result.returncode == 0, output  # 5 would mean "no tests ran": a failure too
    assert counts.get("passed", 0) > 100, output
    assert counts.get("failed", 0) == counts.get("error", 0) == 0, output
