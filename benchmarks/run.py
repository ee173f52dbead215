"""Bake a project from this template and measure what its app costs the server.

    python benchmarks/run.py                       # every comparison, about 5 minutes on 2 cores
    python benchmarks/run.py --baseline a16fd55    # and the same against that revision, new/old
    python benchmarks/run.py --revision HEAD~3 --baseline HEAD~4   # two commits, no working tree
    python benchmarks/run.py --quick               # a smoke run (tests/test_benchmarks.py)
    python benchmarks/run.py -o authentication=jwt -o rejection_strategy=pre_accept
    python benchmarks/run.py --flood               # refusals and sessions in bulk: any leak?

Run it with the template's development environment (cookiecutter and uv:
``uv sync`` at the template root). It bakes the working tree with cookiecutter
(and, with ``--baseline REV``, that revision of the template, taken with
``git archive``), builds each project's virtualenv with uv (the project and its
``dev`` group), then runs ``measure.py`` (or ``flood.py``) with the new
project's Python, where the reference apps and the client run too. README.md
says how the figures are measured and what they mean.
"""

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

BENCHMARKS = Path(__file__).resolve().parent
TEMPLATE = BENCHMARKS.parent


def run(command: list[str], cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
    """Run a tool quietly; its output only if it fails."""
    try:
        return subprocess.run(
            command, cwd=cwd, env=clean_env(), check=True, capture_output=True, text=True
        )
    except subprocess.CalledProcessError as failed:
        raise SystemExit(f"{' '.join(command)} failed:\n{failed.stdout}{failed.stderr}") from None


def uv() -> str:
    try:
        from uv import find_uv_bin  # the template's dev group installs it
    except ImportError:
        found = shutil.which("uv")
        if found is None:
            raise SystemExit("uv not found: run this in the template's dev environment") from None
        return found
    return find_uv_bin()


def clean_env() -> dict[str, str]:
    """No settings of the caller's shell reach the baked apps; no Python is downloaded."""
    drop = ("WS_", "VIRTUAL_ENV", "PYTHONPATH")
    env = {name: value for name, value in os.environ.items() if not name.startswith(drop)}
    return {**env, "UV_PYTHON_DOWNLOADS": "never", "PYTHONDONTWRITEBYTECODE": "1"}


def export(revision: str, folder: Path) -> Path:
    """The template as it was at ``revision`` (a commit, tag or branch), from git."""
    template = folder / "template"
    template.mkdir(parents=True)
    archive = folder / "template.tar"
    run(["git", "-C", str(TEMPLATE), "archive", "--format=tar", "-o", str(archive), revision])
    run(["tar", "-xf", str(archive), "-C", str(template)])
    archive.unlink()
    return template


def bake(
    template: Path, folder: Path, options: dict[str, str], python: str, revision: str
) -> dict[str, str]:
    """Bake a project with its virtualenv; what measure.py needs to know about it."""
    output = folder / "baked"
    extra = [f"{key}={value}" for key, value in options.items()]
    cookiecutter = [sys.executable, "-m", "cookiecutter", "--no-input", "-o", str(output)]
    run([*cookiecutter, str(template), *extra])
    (project,) = output.iterdir()
    (package,) = [init.parent.name for init in (project / "src").glob("*/__init__.py")]
    venv = project / ".venv"
    run([uv(), "venv", "-q", "--python", python, str(venv)])
    install = [uv(), "pip", "install", "-q", "--python", str(venv / "bin" / "python")]
    run([*install, "-e", ".", "--group", "dev"], cwd=project)
    python = str(venv / "bin" / "python")
    return {"folder": str(project), "python": python, "package": package, "revision": revision}


def working_tree() -> str:
    """The template's commit, marked when the working tree has changes."""
    describe = ["git", "-C", str(TEMPLATE), "describe", "--always", "--dirty"]
    return run(describe).stdout.strip()


def choices(options: dict[str, str]) -> dict[str, str]:
    """The strategy and authentication a bake gets: the options given, else the defaults."""
    defaults = json.loads((TEMPLATE / "cookiecutter.json").read_text())
    return {
        name: options.get(name, defaults[name][0])
        for name in ("rejection_strategy", "authentication")
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--baseline", metavar="REV", help="also measure a project of this revision")
    parser.add_argument(
        "--revision", metavar="REV", help="bake this revision instead of the working tree"
    )
    parser.add_argument(
        "-o", "--option", action="append", default=[], metavar="KEY=VALUE",
        help="a cookiecutter answer for both bakes (repeat)",
    )  # fmt: skip
    parser.add_argument(
        "-e", "--env", action="append", default=[], metavar="KEY=VALUE",
        help="a setting for the new project's servers only (repeat): a change measured alone",
    )  # fmt: skip
    parser.add_argument("--python", default=sys.executable, help="the projects' interpreter")
    parser.add_argument("--workdir", type=Path, help="bake here and keep it (default: a temp dir)")
    parser.add_argument("--flood", action="store_true", help="run flood.py instead")
    parser.add_argument("--quick", action="store_true", help="a smoke run: tiny batches")
    parser.add_argument("--rounds", type=int, help="rounds per comparison")
    parser.add_argument("--json", action="store_true", help="print the report as JSON")
    args = parser.parse_args()
    options = dict(option.split("=", 1) for option in args.option)

    workdir = args.workdir or Path(tempfile.mkdtemp(prefix="template-benchmark-"))
    try:
        config: dict[str, object] = {**choices(options)}
        config["new_env"] = dict(setting.split("=", 1) for setting in args.env)
        if args.revision:
            template, revision = export(args.revision, workdir / "revision"), args.revision
        else:
            template, revision = TEMPLATE, working_tree()
        new = bake(template, workdir / "new", options, args.python, revision)
        config["new"] = new
        if args.baseline:
            template = export(args.baseline, workdir / "baseline")
            config["old"] = bake(template, workdir / "old", options, args.python, args.baseline)
        config_path = workdir / "run.json"
        config_path.write_text(json.dumps(config, indent=2))
        script = "flood.py" if args.flood else "measure.py"
        command = [new["python"], str(BENCHMARKS / script), "--config", str(config_path)]
        command += ["--quick"] if args.quick else []
        command += ["--rounds", str(args.rounds)] if args.rounds and not args.flood else []
        command += ["--json"] if args.json else []
        return subprocess.call(command, env=clean_env())
    finally:
        if args.workdir is None:
            shutil.rmtree(workdir, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
