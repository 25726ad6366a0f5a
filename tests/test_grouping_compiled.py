"""The grouping engine is compiled with mypyc (setup.py) and must group exactly as its Python source does.

Both builds replay the same input in their own process (tests/grouping_replay.py): the eight Loghub sets,
word-variable families, stack traces with and without frames, hostile strings, and a small raw-message cache
that turns over many times. Every problem id, template, alias, stored key and cache figure must be equal.
"""

from __future__ import annotations

import importlib
import json
import subprocess
import sys
from pathlib import Path

import pytest

from tests.grouping_replay import COMPILED

ROOT = Path(__file__).resolve().parents[1]


def _compiled() -> bool:
    return all(not importlib.import_module(name).__file__.endswith(".py") for name in COMPILED)


needs_build = pytest.mark.skipif(not _compiled(), reason="the grouping engine is not compiled: `pip install -e .` "
                                                         "with a C compiler builds it (setup.py)")


@needs_build
def test_the_installed_grouping_engine_is_compiled():
    """In CI a pure-Python fallback (no compiler, a failed build) is a skip, which fails the run."""
    assert {Path(importlib.import_module(name).__file__).suffix for name in COMPILED} == {".so"}


def _replay(*args: str) -> dict:
    out = subprocess.run([sys.executable, "-m", "tests.grouping_replay", *args], cwd=ROOT, capture_output=True,
                         text=True, timeout=600)
    assert out.returncode == 0, out.stderr[-3000:]
    return json.loads(out.stdout)


@needs_build
def test_compiled_and_pure_python_engines_group_alike():
    compiled, source = _replay(), _replay("--source")
    assert all(name.endswith(".so") for name in compiled.pop("modules").values())
    assert all(name.endswith(".py") for name in source.pop("modules").values())
    assert len(compiled["results"]) > 20_000 and len(compiled["aliases"]) > 0
    for part in compiled:
        assert compiled[part] == source[part], f"{part} differs between the compiled and the pure-Python engine"
