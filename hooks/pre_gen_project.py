"""Validate every answer before cookiecutter writes a single file.

cookiecutter renders this script with Jinja before running it. The answers are
embedded as JSON (``tojson`` escapes every quote, so the raw string below can
never be closed early) and parsed as data: a quote, backslash or newline in an
answer cannot change what this script does.

A bad answer prints one line, ``ERROR: <field>: <rule>``, and exits 1;
cookiecutter then removes the (still empty) project directory, and the folders a
slug such as ``a/b`` made above it go right after (``REMOVE_EMPTY_PARENTS``).
"""

import builtins
import json
import keyword
import re
import subprocess
import sys
from pathlib import Path, PurePath

# Single quotes on purpose (tojson escapes ' but not "): keep the formatter off them.
ANSWERS = json.loads(r'{{ cookiecutter | tojson }}')  # fmt: skip

# The choices cookiecutter.json offers, repeated here because cruft renders hooks
# without `_cookiecutter` (the template's own cookiecutter.json); a template test
# keeps the two identical. cookiecutter refuses other choices given on the command
# line itself; these catch the rest (a replay file, an edited .cruft.json).
CHOICES = {
    "python_version": ("3.13", "3.12", "3.11", "3.10"),
    "rejection_strategy": ("both", "pre_accept", "accept_then_close"),
    "authentication": ("api_tokens", "jwt"),
}

SLUG = re.compile(r"[a-z][a-z0-9]*(-[a-z0-9]+)*")
PACKAGE = re.compile(r"[a-z_][a-z0-9_]*")
EMAIL = re.compile(r"[^@\s]+@[^@\s]+\.[^@\s]+")
CONTROL = re.compile(r"[\x00-\x1f\x7f]")

# Names the generated project imports; a package called like one of them would
# shadow it on sys.path and break the app in confusing ways.
DEPENDENCIES = {
    "fastapi", "starlette", "uvicorn", "pydantic", "pydantic_settings", "websockets",
    "wsproto", "h11", "httptools", "httpx", "pytest", "anyio", "limits", "redis",
    "prometheus_client", "jwt", "cryptography", "psutil", "playwright", "fastapi_cli",
    "tests", "src", "benchmarks", "scripts",
}  # fmt: skip

MAX_LENGTH = {
    "project_name": 100,
    "project_slug": 64,
    "package_name": 64,
    "description": 300,
    "author_name": 100,
    "author_email": 254,
}


def check_text(field: str, value: str) -> str | None:
    if not value.strip():
        return "must not be empty"
    if value != value.strip():
        return "must not start or end with whitespace"
    if CONTROL.search(value):
        return "must be a single line without control characters"
    if len(value) > MAX_LENGTH[field]:
        return f"must be at most {MAX_LENGTH[field]} characters"
    return None


def check_slug(value: str) -> str | None:
    if not SLUG.fullmatch(value):
        return (
            f"{value!r} must be lowercase ASCII letters, digits and single hyphens, "
            "starting with a letter (e.g. websocket-gatekeeper)"
        )
    return None


def check_package(value: str) -> str | None:
    if not PACKAGE.fullmatch(value):
        return (
            f"{value!r} must be a lowercase ASCII Python identifier: letters, digits "
            "and underscores, not starting with a digit (e.g. websocket_gatekeeper)"
        )
    if keyword.iskeyword(value) or keyword.issoftkeyword(value):
        return f"{value!r} is a Python keyword"
    if value in sys.stdlib_module_names or hasattr(builtins, value):
        return f"{value!r} would shadow the Python standard library or a builtin"
    if value in DEPENDENCIES:
        return f"{value!r} would shadow a module the generated project uses"
    return None


def check_email(value: str) -> str | None:
    if not EMAIL.fullmatch(value):
        return f"{value!r} must look like name@example.com"
    return None


def check_choice(field: str, value: str) -> str | None:
    allowed = CHOICES[field]
    if value not in allowed:
        return f"{value!r} is not supported; choose one of: {', '.join(allowed)}"
    return None


def problems(answers: dict[str, str]) -> list[tuple[str, str]]:
    checks = [
        ("project_name", check_text("project_name", answers["project_name"])),
        ("project_slug", check_text("project_slug", answers["project_slug"])),
        ("project_slug", check_slug(answers["project_slug"])),
        ("package_name", check_text("package_name", answers["package_name"])),
        ("package_name", check_package(answers["package_name"])),
        ("description", check_text("description", answers["description"])),
        ("author_name", check_text("author_name", answers["author_name"])),
        ("author_email", check_text("author_email", answers["author_email"])),
        ("author_email", check_email(answers["author_email"])),
        *((field, check_choice(field, answers[field])) for field in CHOICES),
    ]
    return [(field, rule) for field, rule in checks if rule is not None]


# cookiecutter makes the project folder before this hook runs, with every folder
# above it that a slug such as "a/b" names, and when the hook fails it removes the
# project folder only, after this script has exited. The folders above it are left
# to this small process: it waits for that removal, then removes them, deepest
# first, as long as they are empty (os.rmdir never removes anything inside).
REMOVE_EMPTY_PARENTS = """
import os, sys, time
project, parents = sys.argv[1], sys.argv[2:]
deadline = time.monotonic() + 60
while os.path.lexists(project) and time.monotonic() < deadline:
    time.sleep(0.005)
for parent in parents:
    try:
        os.rmdir(parent)
    except OSError:
        break
"""


def parents_made_for(slug: str, project: Path, output: str | None) -> list[Path]:
    """The folders between the output folder and the project folder that the slug
    named, deepest first; none outside the output folder."""
    parts = PurePath(slug).parts
    if len(parts) < 2 or PurePath(slug).is_absolute():
        return []
    if output is None:  # cruft does not say: the project folder is output/<slug>
        if any(part in (".", "..") for part in parts):
            return []
        output = str(project.parents[len(parts) - 1])
    root = Path(output).resolve()
    made = []
    for end in range(1, len(parts)):
        if parts[end - 1] in (".", ".."):
            continue
        folder = Path(output, *parts[:end])
        resolved = folder.resolve()
        if resolved != root and resolved.is_relative_to(root):
            made.append(folder)
    return made[::-1]


def remove_empty_parents_later(slug: str, output: str | None) -> None:
    project = Path.cwd()  # cookiecutter runs this hook in the project folder
    parents = parents_made_for(slug, project, output)
    if parents:
        subprocess.Popen(
            [sys.executable, "-c", REMOVE_EMPTY_PARENTS, str(project), *map(str, parents)],
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            start_new_session=True,  # outlives this hook; holds none of its pipes
        )


def main() -> int:
    found = problems(ANSWERS)
    if found:
        field, rule = found[0]  # one line: the first problem is the one to fix first
        print(f"ERROR: {field}: {rule}", file=sys.stderr)
        remove_empty_parents_later(ANSWERS["project_slug"], ANSWERS.get("_output_dir"))
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
