"""Build hook: compile the grouping engine's hot path with mypyc (metadata stays in pyproject.toml).

The engine learns every message of every window; compiled, it runs about twice as fast as Drain3 on
word-variable logs (bench/grouping_bench.py). The modules are plain, typed Python and behave the same either
way (tests/test_grouping_compiled.py compares the two on the same input). Without a C compiler, or with
AILOG_PURE_PYTHON=1, the package installs as pure Python: slower, never different.
"""

from __future__ import annotations

import os
import shutil
import sys

from setuptools import setup

COMPILED = ["tasks/grouping/masking.py", "tasks/grouping/miner.py", "tasks/grouping/engine.py"]


def compiled_modules() -> list:
    if os.environ.get("AILOG_PURE_PYTHON") == "1":
        return []
    if not shutil.which(os.environ.get("CC", "cc")):
        print("warning: no C compiler (cc); the grouping engine stays pure Python", file=sys.stderr)
        return []
    try:
        from mypyc.build import mypycify
    except ImportError:  # building without the build requirements (e.g. `setup.py` run by hand)
        print("warning: mypyc is not installed; the grouping engine stays pure Python", file=sys.stderr)
        return []
    # one shared library inside the package, not a hashed top-level module: the image runs the flows from its
    # working directory, which must find the same build as site-packages
    return mypycify(["--ignore-missing-imports", "--follow-imports=silent", *COMPILED], opt_level="3",
                    group_name="tasks.grouping.native")


setup(ext_modules=compiled_modules())
