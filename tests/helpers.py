"""Helpers for the template's own tests: bake, find interpreters, run generated suites."""

import itertools
import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from ruff.__main__ import find_ruff_bin
from uv import find_uv_bin

TEMPLATE = Path(__file__).resolve().parents[1]
SKELETON = TEMPLATE / "{{cookiecutter.project_slug}}"
CHOICES = json.loads((TEMPLATE / "cookiecutter.json").read_text(encoding="utf-8"))
STRATEGIES: list[str] = CHOICES["rejection_strategy"]
AUTHENTICATIONS: list[str] = CHOICES["authentication"]
PYTHON_VERSIONS: list[str] = CHOICES["python_version"]

OPTIONS = ["browser_demo", "github_ci", "docker", "pre_commit"]  # yes/no pieces


def combination(strategy: str, authentication: str, python: str, **options: bool) -> pytest.param:
    answers: dict[str, Any] = {
        "rejection_strategy": strategy,
        "authentication": authentication,
        "python_version": python,
    }
    answers.update({name: options.get(name, True) for name in OPTIONS})
    off = [f"no_{name}" for name in OPTIONS if not answers[name]]
    return pytest.param(answers, id="-".join([strategy, authentication, f"py{python}", *off]))


# Every combination of every option that changes the output: baked, pruned, linted.
# 3 strategies x 2 authentications x 4 Pythons x 2^4 yes/no pieces = 384.
COMBINATIONS = [
    combination(strategy, authentication, python, **dict(zip(OPTIONS, flags, strict=True)))
    for strategy, authentication, python, *flags in itertools.product(
        STRATEGIES, AUTHENTICATIONS, PYTHON_VERSIONS, *[(True, False)] * len(OPTIONS)
    )
]
# Where the generated test suite runs: where the Python code or tests differ, i.e.
# strategy x authentication x browser demo (12 suites); the other yes/no pieces
# follow the demo (all on, or all off) and add no Python. The Python versions
# rotate, (i + i // 4) % 4: each version runs 3 suites, each strategy x
# authentication runs on two different versions, and every strategy, every
# authentication and the demo on and off each meet all four versions.
SUITE_COMBINATIONS = [
    combination(
        strategy, authentication, PYTHON_VERSIONS[(i + i // 4) % 4], **dict.fromkeys(OPTIONS, demo)
    )
    for i, (strategy, authentication, demo) in enumerate(
        itertools.product(STRATEGIES, AUTHENTICATIONS, (True, False))
    )
]


def load_hook(name: str, **answers: Any) -> dict[str, Any]:
    """The names a hook defines, with ``answers`` standing in for cookiecutter's context.

    The hook's only Jinja is its `{{ cookiecutter | tojson }}` line; put JSON there
    and run the module body (not its ``main()``).
    """
    source = (TEMPLATE / "hooks" / f"{name}.py").read_text(encoding="utf-8")
    rendered = source.replace("{{ cookiecutter | tojson }}", json.dumps(answers))
    namespace: dict[str, Any] = {"__name__": f"hook_{name}"}
    exec(compile(rendered, f"hooks/{name}.py", "exec"), namespace)
    return namespace


def ruff(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [find_ruff_bin(), *args], cwd=cwd, capture_output=True, text=True, check=False
    )


def find_python(version: str) -> str | None:
    """An interpreter for ``version``: on PATH, or installed by pyenv."""
    candidates = [shutil.which(f"python{version}"), *sorted_pyenv_pythons(version)]
    if sys.version_info[:2] == tuple(map(int, version.split("."))):
        candidates.insert(0, sys.executable)
    for candidate in filter(None, candidates):
        probe = subprocess.run(
            [candidate, "-c", "import sys; print('%d.%d' % sys.version_info[:2])"],
            capture_output=True, text=True, check=False,
        )  # fmt: skip
        if probe.returncode == 0 and probe.stdout.strip() == version:
            return candidate
    return None


def sorted_pyenv_pythons(version: str) -> list[str]:
    root = Path(os.environ.get("PYENV_ROOT", Path.home() / ".pyenv")) / "versions"
    found = root.glob(f"{version}.*/bin/python{version}")
    return [str(path) for path in sorted(found, reverse=True)]


def clean_env() -> dict[str, str]:
    """The environment for a generated project's own tools: nothing of ours leaks in."""
    drop = ("PYTEST_", "WS_", "VIRTUAL_ENV", "PYTHONPATH", "COV_")
    env = {k: v for k, v in os.environ.items() if not k.startswith(drop)}
    env["UV_PYTHON_DOWNLOADS"] = "never"  # use the interpreters on this machine
    return env


def python_for(version: str) -> str:
    python = find_python(version)
    if python is None:
        message = f"no Python {version} interpreter on this machine (PATH or pyenv)"
        if os.environ.get("TEMPLATE_TESTS_REQUIRE_ALL_PYTHONS"):
            pytest.fail(message)
        pytest.skip(message)
    return python


def install_project(project: Path, python: str) -> Path:
    """A fresh virtualenv with the project and its dev group; uv's cache makes it fast."""
    venv = project / ".venv"
    uv = find_uv_bin()
    env = clean_env()
    subprocess.run([uv, "venv", "-q", "--python", python, str(venv)], check=True, env=env)
    subprocess.run(
        [uv, "pip", "install", "-q", "--python", str(venv / "bin" / "python"),
         "-e", ".", "--group", "dev"],
        cwd=project, check=True, env=env,
    )  # fmt: skip
    return venv / "bin" / "python"


SUMMARY = re.compile(r"(\d+) (passed|failed|errors?|skipped|xfailed|xpassed)")


def summary_counts(output: str) -> dict[str, int]:
    """Counts from pytest's closing line, e.g. {"passed": 172, "failed": 0}."""
    last = output.strip().splitlines()[-1] if output.strip() else ""
    return {kind.removesuffix("s"): int(n) for n, kind in SUMMARY.findall(last)}


# "${{ ... }}" is GitHub Actions' own expression syntax, not a Jinja leftover.
JINJA = re.compile(r"(?<!\$)\{\{|\{%|%\}")


def leftover_jinja(project: Path) -> list[str]:
    found = []
    for path in project.rglob("*"):
        if path.is_file() and ".venv" not in path.parts and path.suffix != ".png":
            text = path.read_text(encoding="utf-8", errors="replace")
            found += [f"{path.relative_to(project)}: {m}" for m in JINJA.findall(text)]
    return found
