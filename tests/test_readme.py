"""The commands the README promises are the ones CI and the hooks really use."""

import re

from helpers import TEMPLATE, ruff

README = (TEMPLATE / "README.md").read_text(encoding="utf-8")


def fenced_command_after(marker: str) -> str:
    match = re.search(re.escape(marker) + r".*?```bash\n(.+?)\n```", README, re.DOTALL)
    assert match, f"no bash block after {marker!r}"
    return match.group(1)


def test_ci_runs_the_readme_test_command_verbatim() -> None:
    command = fenced_command_after("<!-- test-command")
    ci = (TEMPLATE / ".ci" / "run").read_text(encoding="utf-8")
    assert command in ci.splitlines()


def test_generated_readme_and_next_steps_share_the_commands() -> None:
    readme = (TEMPLATE / "{{cookiecutter.project_slug}}" / "README.md").read_text(encoding="utf-8")
    hook = (TEMPLATE / "hooks" / "post_gen_project.py").read_text(encoding="utf-8")
    setup = (
        "python3 -m venv .venv && .venv/bin/python -m pip install -q -U pip"
        " && .venv/bin/python -m pip install -q -e . --group dev"
    )
    assert f"{setup} && .venv/bin/python -m {{{{ cookiecutter.package_name }}}}" in readme
    assert f"{setup} && .venv/bin/python -m pytest" in readme
    assert '"python3 -m venv .venv && .venv/bin/python -m pip install -q -U pip"' in hook


def test_template_side_code_is_lint_clean() -> None:
    # hooks/, tests/ and scripts/ are the template's own code: held to the same bar.
    code = ["hooks", "tests", "scripts", "benchmarks"]  # (the skeleton: after rendering)
    for args in (["check", "--no-cache", *code], ["format", "--check", "--no-cache", *code]):
        result = ruff(*args, cwd=TEMPLATE)
        assert result.returncode == 0, result.stdout + result.stderr
