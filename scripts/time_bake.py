"""Time one bake of the template with the default answers: the median of several.

    .venv/bin/python scripts/time_bake.py [runs]
"""

import contextlib
import io
import statistics
import sys
import tempfile
import time
from pathlib import Path

from cookiecutter.main import cookiecutter

TEMPLATE = Path(__file__).resolve().parents[1]


def bake_seconds() -> float:
    with tempfile.TemporaryDirectory() as output, contextlib.redirect_stdout(io.StringIO()):
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
