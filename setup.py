"""Build hook: compile the per-event hot path with mypyc (metadata stays in pyproject.toml).

Every event of every window is decoded (`documents`, `text`), scrubbed (`scrubbing`), sent from the reading to
the grouping process (`event_rows`) and grouped (the grouping engine with its stack-trace parser). Compiled, the engine learns word-variable logs about 1.6x faster than as
pure Python (1.7-2.2x Drain3's rate in most rounds of bench/grouping_bench.py), and a 1M-event backfill's reading
process needs about a sixth less CPU with the decoding and scrubbing modules compiled too (bench/README.md). The
modules are plain, typed Python and behave the same either way (tests/test_grouping_compiled.py compares the two
on the same input). Without a C compiler, or with AILOG_PURE_PYTHON=1, the package installs as pure Python:
slower, never different.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import sys
from pathlib import Path

from setuptools import setup
from setuptools.command.build_ext import build_ext

COMPILED = ["tasks/grouping/masking.py", "tasks/grouping/miner.py", "tasks/grouping/stacktrace.py",
            "tasks/grouping/engine.py", "tasks/text.py", "tasks/source/documents.py", "tasks/scrubbing.py",
            "tasks/event_rows.py"]
# which sources the compiled modules stand for (tests/conftest.py compares): mypyc rewrites its C, and the
# compiler relinks, only when the code changed, so file times cannot tell a stale build from a comment edit
STAMP = Path("tasks/native.sources")


def sources_digest() -> str:
    digest = hashlib.sha256()
    for path in COMPILED:
        digest.update(Path(path).read_bytes())
    return digest.hexdigest()


class StampedBuildExt(build_ext):
    def run(self) -> None:
        super().run()
        if self.extensions:
            STAMP.write_text(sources_digest() + "\n")


def compiled_modules() -> list:
    if os.environ.get("AILOG_PURE_PYTHON") == "1":
        return []
    if not shutil.which(os.environ.get("CC", "cc")):
        print("warning: no C compiler (cc); the per-event modules stay pure Python", file=sys.stderr)
        return []
    try:
        from mypyc.build import mypycify
    except ImportError:  # building without the build requirements (e.g. `setup.py` run by hand)
        print("warning: mypyc is not installed; the per-event modules stay pure Python", file=sys.stderr)
        return []
    # one shared library inside the package, not a hashed top-level module: the image runs the flows from its
    # working directory, which must find the same build as site-packages
    return mypycify(["--ignore-missing-imports", "--follow-imports=silent", *COMPILED], opt_level="3",
                    group_name="tasks.native")


setup(ext_modules=compiled_modules(), cmdclass={"build_ext": StampedBuildExt})
