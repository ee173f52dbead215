"""examples/ holds the default project as the template renders it now, and replay works."""

import json
import subprocess
import sys
from pathlib import Path

from helpers import TEMPLATE

EXAMPLE = TEMPLATE / "examples" / "websocket-gatekeeper"
REGENERATE = (
    "rm -rf examples && python -m cookiecutter --no-input -o examples . "
    "&& rm examples/websocket-gatekeeper/.env"
)
# Different on every bake: a fresh random secret. (.cruft.json's template location
# and commit are normalised in tree().)
UNSTABLE = {".env"}


def cookiecutter(*args: str) -> None:
    subprocess.run([sys.executable, "-m", "cookiecutter", *args], check=True, capture_output=True)


def tree(root: Path) -> dict[str, bytes]:
    files = {}
    for path in sorted(root.rglob("*")):
        name = str(path.relative_to(root))
        if path.is_file() and name not in UNSTABLE and "__pycache__" not in path.parts:
            files[name] = path.read_bytes()
    if ".cruft.json" in files:  # where the template is, and its commit, vary by checkout
        cruft = json.loads(files[".cruft.json"])
        cruft["template"] = cruft["context"]["cookiecutter"]["_template"] = "<template>"
        cruft["commit"] = cruft["context"]["cookiecutter"]["_commit"] = "<commit>"
        files[".cruft.json"] = json.dumps(cruft, indent=2).encode()
    return files


def test_examples_match_what_the_template_renders(tmp_path: Path) -> None:
    cookiecutter("--no-input", "-o", str(tmp_path), str(TEMPLATE))
    rendered = tree(tmp_path / "websocket-gatekeeper")
    committed = tree(EXAMPLE)
    assert sorted(rendered) == sorted(committed), f"examples/ drifted; regenerate: {REGENERATE}"
    drifted = [name for name in rendered if rendered[name] != committed[name]]
    assert drifted == [], f"examples/ drifted in {drifted}; regenerate: {REGENERATE}"


def test_replaying_the_kept_answers_reproduces_the_project(tmp_path: Path) -> None:
    answers = {
        "project_name": "Replay Me",
        "rejection_strategy": "accept_then_close",
        "docker": "no",
        "python_version": "3.11",
    }
    cookiecutter("--no-input", "-o", str(tmp_path / "first"), str(TEMPLATE),
                 *(f"{k}={v}" for k, v in answers.items()))  # fmt: skip
    project = tmp_path / "first" / "replay-me"
    kept = json.loads((project / ".cruft.json").read_text(encoding="utf-8"))
    replay = tmp_path / "replay.json"
    replay.write_text(json.dumps(kept["context"]), encoding="utf-8")
    cookiecutter("--replay-file", str(replay), "-o", str(tmp_path / "again"), str(TEMPLATE))
    assert tree(tmp_path / "again" / "replay-me") == tree(project)
    assert kept["context"]["cookiecutter"]["rejection_strategy"] == "accept_then_close"
    assert kept["context"]["cookiecutter"]["docker"] is False
