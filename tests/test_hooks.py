"""The hooks agree with cookiecutter.json and the skeleton; their pure helpers behave."""

from pathlib import Path
from typing import Any

import pytest
from helpers import CHOICES, SKELETON, load_hook

# Stand-in answers: with the package named like the skeleton's folder, the paths the
# post-gen hook computes are the skeleton's own paths.
ANSWERS = {
    "package_name": "{{cookiecutter.package_name}}",
    "_repo_dir": ".",
    "_template": ".",
}


def test_pre_gen_choices_are_cookiecutter_json_choices() -> None:
    # The hook cannot read them from `_cookiecutter` (cruft does not provide it).
    choices = load_hook("pre_gen_project", **ANSWERS)["CHOICES"]
    assert {field: list(values) for field, values in choices.items()} == {
        field: value
        for field, value in CHOICES.items()
        if isinstance(value, list) and not field.startswith("_")
    }


def test_post_gen_variants_are_cookiecutter_json_choices() -> None:
    variants = load_hook("post_gen_project", **ANSWERS)["VARIANTS"]
    assert {field: list(values) for field, values in variants.items()} == {
        field: CHOICES[field] for field in ("rejection_strategy", "authentication")
    }


def pruned_paths(hook: dict[str, Any]) -> list[Path]:
    lists = ("STRATEGY_FILES", "AUTHENTICATION_FILES", "OPTION_FILES")
    return [path for name in lists for paths in hook[name].values() for path in paths]


def test_every_path_the_post_gen_hook_prunes_is_in_the_skeleton() -> None:
    # The hook tolerates a missing path (a rename must not break every bake): this
    # is where a stale entry shows up.
    hook = load_hook("post_gen_project", **ANSWERS)
    missing = [str(path) for path in pruned_paths(hook) if not (SKELETON / path).exists()]
    assert missing == []


@pytest.mark.parametrize(
    ("typed", "origin", "expected"),
    [
        ("gh:owner/repo", None, "https://github.com/owner/repo.git"),
        ("gl:group/repo", None, "https://gitlab.com/group/repo.git"),
        ("git+file:///srv/template", None, "file:///srv/template"),
        ("git+https://example.com/t.git", None, "https://example.com/t.git"),
        ("https://example.com/t.git", None, "https://example.com/t.git"),
        # The clone cookiecutter made knows best (user-defined abbreviations too).
        ("mine:template", "https://git.example.com/me/template.git",
         "https://git.example.com/me/template.git"),
    ],
)  # fmt: skip
def test_cruft_gets_a_template_url_git_can_clone(typed: str, origin: str, expected: str) -> None:
    clone_url = load_hook("post_gen_project", **ANSWERS)["clone_url"]
    assert clone_url(typed, origin) == expected
