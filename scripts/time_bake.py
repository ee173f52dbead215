"""Time what the template tests do per combination: bake, ruff, vulture (medians).

.venv/bin/python scripts/time_bake.py [runs]
"""

import contextlib
import os
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from functools import partial
from pathlib import Path

from cookiecutter.main import cookiecutter
from ruff.__main__ import find_ruff_bin
from vulture import Vulture

TEMPLATE = Path(__file__).resolve().parents[1]


@contextlib.contextmanager
def quiet_stdout() -> Iterator[None]:
    """Silence fd 1 itself: the hooks run as child processes and print their next steps."""
    sys.stdout.flush()
    saved = os.dup(1)
    with Path(os.devnull).open("w") as devnull:
        os.dup2(devnull.fileno(), 1)
    try:
        yield
    finally:
        os.dup2(saved, 1)
        os.close(saved)


def seconds(action: Callable[[], object]) -> float:
    started = time.perf_counter()
    action()
    return time.perf_counter() - started


def report(name: str, times: list[float]) -> None:
    times = sorted(times)
    print(
        f"{name:<22} median {statistics.median(times) * 1000:5.0f} ms over {len(times)} runs "
        f"(min {times[0] * 1000:.0f} ms, max {times[-1] * 1000:.0f} ms)"
    )


def main() -> None:
    runs = int(sys.argv[1]) if len(sys.argv) > 1 else 11
    ruff = find_ruff_bin()
    timings: dict[str, list[float]] = {}
    with tempfile.TemporaryDirectory() as output:
        for run in range(runs):
            folder = Path(output, str(run))
            bake = partial(cookiecutter, str(TEMPLATE), no_input=True, output_dir=str(folder))
            with quiet_stdout():
                timings.setdefault("one bake (defaults)", []).append(seconds(bake))
            project = folder / "websocket-gatekeeper"
            for args in (["check"], ["format", "--check"]):
                lint = partial(subprocess.run, [ruff, *args, "--no-cache", "."], cwd=project,
                               capture_output=True, check=False)  # fmt: skip
                timings.setdefault(f"ruff {args[0]}", []).append(seconds(lint))
            scan = partial(Vulture().scavenge, [str(project / "src")])
            timings.setdefault("vulture scan of src/", []).append(seconds(scan))
    for name, times in timings.items():
        report(name, times)


if __name__ == "__main__":
    main()
