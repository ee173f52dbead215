"""cruft works on projects from this template: create, check, update, and a clean failure.

Everything runs the real ``cruft`` and ``cookiecutter`` command lines against a git
repository holding the template as it is on disk now (uncommitted work included).
"""

import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest
from helpers import SKELETON, TEMPLATE

COPY_IGNORE = shutil.ignore_patterns("__pycache__", ".ruff_cache", ".pytest_cache", ".venv")
CHANGE = "This line came with `cruft update`."


@pytest.fixture
def env(tmp_path: Path) -> dict[str, str]:
    """Hermetic git and cookiecutter: no user config, clones and replays under tmp_path."""
    config = tmp_path / "cookiecutter.yaml"
    config.write_text(
        f"cookiecutters_dir: {tmp_path / 'cookiecutters'}\nreplay_dir: {tmp_path / 'replay'}\n",
        encoding="utf-8",
    )
    return {
        **os.environ,
        "COOKIECUTTER_CONFIG": str(config),
        "GIT_CONFIG_GLOBAL": os.devnull,
        "GIT_CONFIG_NOSYSTEM": "1",
        "GIT_AUTHOR_NAME": "Template Tests",
        "GIT_AUTHOR_EMAIL": "tests@example.com",
        "GIT_COMMITTER_NAME": "Template Tests",
        "GIT_COMMITTER_EMAIL": "tests@example.com",
    }


def run(env: dict[str, str], cwd: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        args, cwd=cwd, env=env, capture_output=True, text=True, timeout=300, check=False
    )


def git(env: dict[str, str], cwd: Path, *args: str) -> str:
    result = run(env, cwd, "git", *args)
    assert result.returncode == 0, result.stderr
    return result.stdout.strip()


def commit_all(env: dict[str, str], repo: Path, message: str) -> str:
    git(env, repo, "add", "-A")
    git(env, repo, "commit", "-q", "-m", message)
    return git(env, repo, "rev-parse", "HEAD")


def cruft(env: dict[str, str], cwd: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return run(env, cwd, sys.executable, "-m", "cruft", *args)


@pytest.fixture
def template_repo(tmp_path: Path, env: dict[str, str]) -> Path:
    repo = tmp_path / "template"
    repo.mkdir()
    shutil.copy2(TEMPLATE / "cookiecutter.json", repo)
    shutil.copytree(TEMPLATE / "hooks", repo / "hooks", ignore=COPY_IGNORE)
    shutil.copytree(SKELETON, repo / SKELETON.name, ignore=COPY_IGNORE)
    git(env, repo, "init", "-q")
    commit_all(env, repo, "The template")
    return repo


def assert_cruft_follows_the_template(env: dict[str, str], project: Path, repo: Path) -> None:
    """Up to date; a new template commit makes it out of date; update brings the change."""
    check = cruft(env, project, "check")
    assert check.returncode == 0, check.stdout + check.stderr

    readme = repo / SKELETON.name / "README.md"
    readme.write_text(readme.read_text(encoding="utf-8") + f"\n{CHANGE}\n", encoding="utf-8")
    new_commit = commit_all(env, repo, "Change the generated README")
    check = cruft(env, project, "check")
    assert check.returncode != 0, check.stdout + check.stderr
    assert "out of date" in check.stdout

    git(env, project, "init", "-q")  # cruft update wants a git repository, clean
    commit_all(env, project, "Generated")
    update = cruft(env, project, "update", "-y")
    assert update.returncode == 0, update.stdout + update.stderr
    assert "Created " not in update.stdout  # the hook's next steps: not under cruft
    assert CHANGE in (project / "README.md").read_text(encoding="utf-8")
    changed = git(env, project, "diff", "HEAD", "--name-only").splitlines()
    assert sorted(changed) == [".cruft.json", "README.md"]
    assert git(env, project, "ls-files", "--others", "--exclude-standard") == ""  # no *.rej
    assert json.loads((project / ".cruft.json").read_text(encoding="utf-8"))["commit"] == new_commit
    check = cruft(env, project, "check")
    assert check.returncode == 0, check.stdout + check.stderr


def test_cruft_create_check_update(
    tmp_path: Path, env: dict[str, str], template_repo: Path
) -> None:
    out = tmp_path / "out"
    out.mkdir()
    create = cruft(
        env, tmp_path, "create", "--no-input", "--output-dir", str(out), str(template_repo)
    )
    assert create.returncode == 0, create.stdout + create.stderr
    project = out / "websocket-gatekeeper"
    state = json.loads((project / ".cruft.json").read_text(encoding="utf-8"))
    assert state["template"] == str(template_repo)
    assert state["commit"] == git(env, template_repo, "rev-parse", "HEAD")
    assert (project / ".env").is_file()  # the post-gen hook ran
    assert_cruft_follows_the_template(env, project, template_repo)


@pytest.mark.parametrize("typed", ["relative path", "absolute path", "git+file URL"])
def test_a_cookiecutter_project_works_with_cruft(
    tmp_path: Path, env: dict[str, str], template_repo: Path, typed: str
) -> None:
    template, location = {
        "relative path": (template_repo.name, str(template_repo)),
        "absolute path": (str(template_repo), str(template_repo)),
        "git+file URL": (f"git+file://{template_repo}", f"file://{template_repo}"),
    }[typed]
    generate = run(
        env, tmp_path, sys.executable, "-m", "cookiecutter", "--no-input", "-o", "out", template
    )
    assert generate.returncode == 0, generate.stdout + generate.stderr
    project = tmp_path / "out" / "websocket-gatekeeper"
    state = json.loads((project / ".cruft.json").read_text(encoding="utf-8"))
    assert state["template"] == location
    assert state["commit"] == git(env, template_repo, "rev-parse", "HEAD")
    assert state["directory"] is None
    assert state["context"]["cookiecutter"]["rejection_strategy"] == "both"
    assert_cruft_follows_the_template(env, project, template_repo)


@pytest.mark.parametrize(
    ("answer", "line"),
    [
        ('{"package_name": "class"}', "ERROR: package_name: 'class' is a Python keyword"),
        # cruft makes the folders of a slug with a path in it as cookiecutter does.
        ('{"project_slug": "a/b"}', "ERROR: project_slug: 'a/b' must be lowercase ASCII"),
    ],
)
def test_a_failed_cruft_create_says_why_and_leaves_nothing(
    tmp_path: Path, env: dict[str, str], template_repo: Path, answer: str, line: str
) -> None:
    out = tmp_path / "out"
    out.mkdir()
    create = cruft(
        env, tmp_path, "create", "--no-input", "--output-dir", str(out),
        "--extra-context", answer, str(template_repo),
    )  # fmt: skip
    assert create.returncode != 0
    ours = [line for line in (create.stdout + create.stderr).splitlines() if "ERROR:" in line]
    assert len(ours) == 1
    assert ours[0].startswith(line)
    deadline = time.monotonic() + 10  # the folders above the project folder go just after
    while list(out.iterdir()) and time.monotonic() < deadline:
        time.sleep(0.01)
    assert list(out.iterdir()) == []


def test_without_git_the_project_is_made_and_the_commit_left_out(
    tmp_path: Path, env: dict[str, str], template_repo: Path
) -> None:
    no_git = {**env, "PATH": str(tmp_path / "empty")}  # git cannot be found
    generate = run(no_git, tmp_path, sys.executable, "-m", "cookiecutter", "--no-input",
                   "-o", "out", str(template_repo))  # fmt: skip
    assert generate.returncode == 0, generate.stdout + generate.stderr
    state = json.loads((tmp_path / "out/websocket-gatekeeper/.cruft.json").read_text("utf-8"))
    assert state["template"] == str(template_repo)
    assert state["commit"] is None
