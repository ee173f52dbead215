"""What a person can type at the prompts: bad answers stop cleanly, odd good ones still work.

Bad answers go through the real ``cookiecutter`` command line, as a user would
type them: exit status not 0, one ``ERROR: <field>: <rule>`` line, nothing left
in the output directory.
"""

import json
import subprocess
import sys
import time
from pathlib import Path

import pytest
from helpers import CHOICES, TEMPLATE, leftover_jinja, ruff

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover
    import tomli as tomllib


def cookiecutter(output: Path, *answers: str) -> subprocess.CompletedProcess[str]:
    output.mkdir(exist_ok=True)
    return subprocess.run(
        [sys.executable, "-m", "cookiecutter", "--no-input", "-o", str(output), str(TEMPLATE),
         *answers],
        capture_output=True, text=True, timeout=120, check=False,
    )  # fmt: skip


BAD_ANSWERS = [
    # (answer, field, words of the rule)
    ("project_name=", "project_name", "must not be empty"),
    ("project_name=   ", "project_name", "must not be empty"),
    ("project_name= padded", "project_name", "must not start or end with whitespace"),
    ("project_name=Two\nLines", "project_name", "single line"),
    ("project_name=" + "x" * 101, "project_name", "at most 100 characters"),
    ("project_slug=My Project", "project_slug", "letters, digits and single hyphens"),
    # Nothing to make a slug from: the default slug is "_", a safe folder name the hook refuses.
    ("project_name=!!!", "project_slug", "starting with a letter"),
    # cookiecutter makes the folders of a slug with a path in it before the hook runs:
    # all of them must be gone afterwards, inside the output folder and outside it.
    ("project_slug=a/b", "project_slug", "lowercase ASCII letters"),
    ("project_slug=a/b/c", "project_slug", "lowercase ASCII letters"),
    ("project_slug=x/../y", "project_slug", "lowercase ASCII letters"),
    ("project_slug=../escape", "project_slug", "lowercase ASCII letters"),
    # An absolute path (in the test's folder) is long: the length rule may come first.
    ("project_slug={tmp}/escape", "project_slug", "must be"),
    ("project_slug=a\\b", "project_slug", "lowercase ASCII letters"),
    ("project_slug=2fa-gate", "project_slug", "starting with a letter"),
    ("project_slug=double--hyphen", "project_slug", "single hyphens"),
    ("project_slug=café", "project_slug", "ASCII"),
    ("project_slug=" + "a" * 65, "project_slug", "at most 64 characters"),
    ("package_name=class", "package_name", "is a Python keyword"),
    ("package_name=match", "package_name", "is a Python keyword"),
    ("package_name=json", "package_name", "shadow the Python standard library"),
    ("package_name=list", "package_name", "shadow the Python standard library or a builtin"),
    ("package_name=fastapi", "package_name", "shadow a module the generated project uses"),
    ("package_name=tests", "package_name", "shadow a module the generated project uses"),
    ("package_name=2fa", "package_name", "Python identifier"),
    ("package_name=my-package", "package_name", "Python identifier"),
    ("package_name=café", "package_name", "ASCII Python identifier"),
    ("package_name=", "package_name", "must not be empty"),
    ("description=line one\nline two", "description", "single line"),
    ("description=" + "d" * 301, "description", "at most 300 characters"),
    ("author_name=", "author_name", "must not be empty"),
    ("author_email=not-an-email", "author_email", "must look like name@example.com"),
    ("author_email=a@b", "author_email", "must look like name@example.com"),
]


@pytest.mark.parametrize(("answer", "field", "rule"), BAD_ANSWERS, ids=lambda v: repr(v)[:40])
def test_bad_answer_stops_with_one_clear_line(
    tmp_path: Path, answer: str, field: str, rule: str
) -> None:
    output = tmp_path / "out"
    result = cookiecutter(output, answer.replace("{tmp}", str(tmp_path)))
    assert result.returncode != 0
    ours = [line for line in result.stderr.splitlines() if line.startswith(f"ERROR: {field}: ")]
    assert len(ours) == 1, result.stderr
    assert rule in ours[0]
    # The folders above the project folder go just after cookiecutter has exited.
    deadline = time.monotonic() + 10
    while list(output.iterdir()) and time.monotonic() < deadline:
        time.sleep(0.01)
    assert list(output.iterdir()) == []
    assert sorted(path.name for path in tmp_path.iterdir()) == ["out"]


def test_a_slug_naming_a_folder_that_exists_stops_before_anything_is_written(
    tmp_path: Path,
) -> None:
    # cookiecutter refuses it itself, before the hook: its own one line (an empty
    # slug names the output folder itself).
    output = tmp_path / "out"
    (output / "taken").mkdir(parents=True)
    for slug in ("..", ".", "", "taken"):
        result = cookiecutter(output, f"project_slug={slug}")
        assert result.returncode != 0
        lines = (result.stdout + result.stderr).strip().splitlines()
        assert lines == [f'Error: "{Path(output, slug)}" directory already exists']
        assert sorted(path.name for path in output.iterdir()) == ["taken"]
        assert list((output / "taken").iterdir()) == []


@pytest.mark.parametrize(
    ("answer", "field"),
    [
        ("rejection_strategy=reject_everyone", "rejection_strategy"),
        ("authentication=saml", "authentication"),
        ("python_version=3.9", "python_version"),
    ],
)
def test_unknown_choice_is_refused_before_anything_is_written(
    tmp_path: Path, answer: str, field: str
) -> None:
    # cookiecutter itself checks choice answers given on the command line or in
    # extra_context, before our hook runs; its last line names field and choices.
    output = tmp_path / "out"
    result = cookiecutter(output, answer)
    assert result.returncode != 0
    last = result.stderr.strip().splitlines()[-1]
    assert field in last
    assert "choices are" in last
    assert list(output.iterdir()) == []


REPLAYED = {
    "project_name": "Replayed",
    "project_slug": "replayed",
    "package_name": "replayed",
    "description": "d",
    "author_name": "a",
    "author_email": "a@example.com",
    "python_version": "3.13",
    "rejection_strategy": "both",
    "authentication": "api_tokens",
    "browser_demo": True,
    "github_ci": True,
    "docker": True,
    "pre_commit": True,
    "_copy_without_render": ["*.png"],
}


@pytest.mark.parametrize(
    ("field", "value"),
    [("authentication", "saml"), ("rejection_strategy", "never"), ("python_version", "3.9")],
)
def test_unknown_choice_in_a_replay_file_is_refused_by_the_hook(
    tmp_path: Path, field: str, value: str
) -> None:
    # A replay file (or an edited .cruft.json) skips cookiecutter's own choice check:
    # the pre-gen hook holds the line, with the same choices as cookiecutter.json.
    replay = tmp_path / "replay.json"
    replay.write_text(json.dumps({"cookiecutter": {**REPLAYED, field: value}}), encoding="utf-8")
    output = tmp_path / "out"
    output.mkdir()
    result = subprocess.run(
        [sys.executable, "-m", "cookiecutter", "--replay-file", str(replay), "-o", str(output),
         str(TEMPLATE)],
        capture_output=True, text=True, timeout=120, check=False,
    )  # fmt: skip
    assert result.returncode != 0
    ours = [line for line in result.stderr.splitlines() if line.startswith("ERROR: ")]
    assert ours == [
        f"ERROR: {field}: {value!r} is not supported; choose one of: " + ", ".join(CHOICES[field])
    ]
    assert list(output.iterdir()) == []


def test_quotes_and_backslashes_reach_pyproject_intact(tmp_path: Path) -> None:
    description = "She said \"no\" \\ then 'yes' <b>&amp; {not jinja}"
    name = 'Bob\'s "Quoted" \\ Gate'
    result = cookiecutter(
        tmp_path / "out", f"project_name={name}", f"description={description}",
        'author_name=O\'Brien "Bob"',
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    project = tmp_path / "out" / "bob-s-quoted-gate"
    pyproject = tomllib.loads((project / "pyproject.toml").read_text(encoding="utf-8"))
    assert pyproject["project"]["description"] == description
    assert pyproject["project"]["authors"][0]["name"] == 'O\'Brien "Bob"'
    assert pyproject["project"]["name"] == "bob-s-quoted-gate"
    assert name in (project / "README.md").read_text(encoding="utf-8")
    assert ruff("check", "--no-cache", ".", cwd=project).returncode == 0


# The longest import name the hook accepts: every generated line that embeds it
# must still fit in 100 columns and format the same as with a short name.
LONGEST_PACKAGE = "a_package_name_as_long_as_the_template_allows_sixty_four_chars_x"


@pytest.mark.parametrize("authentication", CHOICES["authentication"])
@pytest.mark.parametrize("strategy", CHOICES["rejection_strategy"])
def test_the_longest_package_name_is_lint_clean(
    tmp_path: Path, strategy: str, authentication: str
) -> None:
    assert len(LONGEST_PACKAGE) == 64
    result = cookiecutter(
        tmp_path / "out",
        f"package_name={LONGEST_PACKAGE}",
        f"rejection_strategy={strategy}",
        f"authentication={authentication}",
    )
    assert result.returncode == 0, result.stderr
    project = tmp_path / "out" / "websocket-gatekeeper"
    check = ruff("check", "--no-cache", ".", cwd=project)
    assert check.returncode == 0, check.stdout
    formatted = ruff("format", "--check", "--no-cache", ".", cwd=project)
    assert formatted.returncode == 0, formatted.stdout + formatted.stderr


def test_non_ascii_project_name_gets_a_valid_derived_slug(tmp_path: Path) -> None:
    result = cookiecutter(tmp_path / "out", "project_name=Café Señal Überwachung")
    assert result.returncode == 0, result.stderr
    project = tmp_path / "out" / "cafe-senal-uberwachung"
    assert (project / "src" / "cafe_senal_uberwachung" / "main.py").exists()
    assert leftover_jinja(project) == []
    assert ruff("check", "--no-cache", ".", cwd=project).returncode == 0
    assert ruff("format", "--check", "--no-cache", ".", cwd=project).returncode == 0


def test_post_gen_prints_the_next_steps(tmp_path: Path) -> None:
    result = cookiecutter(tmp_path / "out")
    assert result.returncode == 0, result.stderr
    assert ".venv/bin/python -m websocket_gatekeeper" in result.stdout
    assert ".venv/bin/python -m pytest" in result.stdout
