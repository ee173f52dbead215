"""uvicorn's command line, with the garbage collector set as the generated launcher sets it.

Every app of a comparison is served through this, the reference apps as much as
the generated ones: ``python -m <package>`` raises the collector's first
threshold (``GC_THRESHOLD`` in the project's ``__main__.py``), and a project
baked before that moved to the launcher raised it in its app's lifespan. Served
by plain ``python -m uvicorn``, the two would be compared under different
collectors.
"""

import gc
import sys

GC_THRESHOLD = 10_000  # the generated launcher's

if __name__ == "__main__":
    from uvicorn.main import main  # the project's uvicorn: it runs in the project's Python

    gc.set_threshold(GC_THRESHOLD, *gc.get_threshold()[1:])
    sys.exit(main())
