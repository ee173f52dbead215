"""The hooks agree with cookiecutter.json and the skeleton; their pure helpers behave."""

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


def test_the_manifest_names_only_skeleton_files_and_real_choices() -> None:
    # The hook expects every listed file (a stale entry would fail every bake).
    manifest = load_hook("post_gen_project", **ANSWERS)["MANIFEST"]
    assert [path for path, _, _ in manifest if not (SKELETON / path).is_file()] == []
    for path, condition, _ in manifest:
        for option, values in condition.items():
            allowed = CHOICES[option] if isinstance(CHOICES[option], list) else [True, False]
            assert set(values) <= set(allowed), (path, option)


def test_every_per_choice_file_is_in_the_manifest() -> None:
    # `name.<choice>.ext` only says which choice a file serves; the manifest decides.
    choices = {*CHOICES["rejection_strategy"], *CHOICES["authentication"]}
    manifest = {path for path, _, _ in load_hook("post_gen_project", **ANSWERS)["MANIFEST"]}
    named = [
        str(path.relative_to(SKELETON))
        for path in SKELETON.rglob("*.*.*")
        if path.name.split(".")[-2] in choices
    ]
    assert sorted(set(named) - manifest) == []


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
