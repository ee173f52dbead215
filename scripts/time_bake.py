"""Time one bake of the template with the default answers: the median of several.

.venv/bin/python scripts/time_bake.py [runs]
"""

import contextlib
import os
import statistics
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

from cookiecutter.main import cookiecutter

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


def bake_seconds() -> float:
    with tempfile.TemporaryDirectory() as output, quiet_stdout():
        started = time.perf_counter()
        cookiecutter(str(TEMPLATE), no_input=True, output_dir=output)
        return time.perf_counter() - started


def main() -> None:
    runs = int(sys.argv[1]) if len(sys.argv) > 1 else 11
    times = sorted(bake_seconds() for _ in range(runs))
    print(
        f"one bake (defaults): median {statistics.median(times) * 1000:.0f} ms over {runs} runs "
        f"(min {times[0] * 1000:.0f} ms, max {times[-1] * 1000:.0f} ms)"
    )


if __name__ == "__main__":
    main()
