"""Bake every option combination; lint it; run the generated project's own test suite."""

import subprocess
import sys
from pathlib import Path

import pytest
from helpers import (
    COMBINATIONS,
    clean_env,
    install_project,
    leftover_jinja,
    summary_counts,
    python_for,
    ruff,
)

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover
    import tomli as tomllib

# Files that belong to exactly one strategy (relative to the project, {pkg} = package).
STRATEGY_FILES = {
    "pre_accept": [
        "src/{pkg}/pre_accept.py",
        "src/{pkg}/routes/pre_accept_echo.py",
        "tests/test_pre_accept.py",
        "tests/test_live_pre_accept.py",
        "docs/pre-accept.md",
    ],
    "accept_then_close": [
        "src/{pkg}/accept_then_close.py",
        "src/{pkg}/routes/accept_then_close_echo.py",
        "tests/test_accept_then_close.py",
        "tests/test_live_accept_then_close.py",
        "tests/crash_app.py",
        "docs/accept-then-close.md",
    ],
}
STRATEGY_WORDS = {
    "pre_accept": ("PreAcceptGuard", "pre_accept_echo", "/ws/pre-accept"),
    "accept_then_close": ("accept_then_close(", "accept_then_close_echo", "/ws/accept-then-close"),
}


@pytest.fixture(scope="session", params=COMBINATIONS)
def baked(request: pytest.FixtureRequest, cookies_session) -> tuple[dict[str, str], Path]:
    answers = request.param
    result = cookies_session.bake(extra_context=answers)
    assert result.exit_code == 0, result.exception
    assert result.exception is None
    return answers, result.project_path


def chosen(strategy: str) -> set[str]:
    return set(STRATEGY_FILES) if strategy == "both" else {strategy}


def test_bakes_with_the_chosen_files_only(baked: tuple[dict[str, str], Path]) -> None:
    answers, project = baked
    for strategy, files in STRATEGY_FILES.items():
        for name in files:
            path = project / name.format(pkg="websocket_gatekeeper")
            assert path.exists() == (strategy in chosen(answers["rejection_strategy"])), path


def test_no_dead_code_of_the_unchosen_strategy(baked: tuple[dict[str, str], Path]) -> None:
    answers, project = baked
    if answers["rejection_strategy"] == "both":
        return
    unchosen = ({"pre_accept", "accept_then_close"} - chosen(answers["rejection_strategy"])).pop()
    for path in [*project.joinpath("src").rglob("*.py"), *project.joinpath("tests").rglob("*.py")]:
        text = path.read_text(encoding="utf-8")
        for word in STRATEGY_WORDS[unchosen]:
            assert word not in text, f"{path.relative_to(project)} mentions {word}"


def test_no_leftover_jinja(baked: tuple[dict[str, str], Path]) -> None:
    _, project = baked
    assert leftover_jinja(project) == []


def test_ruff_check_is_clean(baked: tuple[dict[str, str], Path]) -> None:
    _, project = baked
    result = ruff("check", "--no-cache", ".", cwd=project)
    assert result.returncode == 0, result.stdout + result.stderr


def test_ruff_format_is_clean(baked: tuple[dict[str, str], Path]) -> None:
    _, project = baked
    result = ruff("format", "--check", "--diff", "--no-cache", ".", cwd=project)
    assert result.returncode == 0, result.stdout + result.stderr


def test_python_version_is_pinned_for_tools(baked: tuple[dict[str, str], Path]) -> None:
    answers, project = baked
    pyproject = tomllib.loads((project / "pyproject.toml").read_text(encoding="utf-8"))
    assert pyproject["project"]["requires-python"] == ">=3.10"
    assert pyproject["tool"]["ruff"]["target-version"] == "py310"
    python_version = (project / ".python-version").read_text(encoding="utf-8")
    assert python_version == answers["python_version"] + "\n"


def test_env_file_has_a_fresh_random_token(baked: tuple[dict[str, str], Path]) -> None:
    _, project = baked
    env = dict(
        line.split("=", 1)
        for line in (project / ".env").read_text(encoding="utf-8").splitlines()
        if line and not line.startswith("#")
    )
    assert len(env["WS_AUTH_TOKENS"]) >= 32
    assert ".env" in (project / ".gitignore").read_text(encoding="utf-8").splitlines()


@pytest.mark.matrix
def test_generated_test_suite_passes(baked: tuple[dict[str, str], Path]) -> None:
    answers, project = baked
    python = install_project(project, python_for(answers["python_version"]))
    result = subprocess.run(
        [str(python), "-m", "pytest", "-q", "-p", "no:cacheprovider"],
        cwd=project, capture_output=True, text=True, env=clean_env(), timeout=900, check=False,
    )  # fmt: skip
    output = result.stdout + result.stderr
    counts = summary_counts(result.stdout)
    print(f"{answers}: {result.stdout.strip().splitlines()[-1]}")
    assert result.returncode == 0, output  # 5 would mean "no tests ran": a failure too
    assert counts.get("passed", 0) > 50, output
    assert counts.get("failed", 0) == counts.get("error", 0) == 0, output
