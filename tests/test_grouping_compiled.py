"""The per-event modules (grouping engine, document decoding, scrubbing, the events' encoding between the
read-ahead processes) are compiled with mypyc (setup.py) and must decide exactly as their Python source does.

Both builds replay the same input in their own process (tests/grouping_replay.py): the eight Loghub sets,
word-variable families, stack traces with and without frames, hostile strings, and a small raw-message cache
that turns over many times; documents of every shape the sources meet, and secret-bearing texts. Every problem
id, template, alias, stored key and cache figure, every decoded event and rejection, every scrubbed text, and
every byte the events are sent as between the processes must be equal.
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


needs_build = pytest.mark.skipif(not _compiled(), reason="the per-event modules are not compiled: `pip install -e .` "
                                                         "with a C compiler builds it (setup.py)")


@needs_build
def test_the_installed_per_event_modules_are_compiled():
    """In CI a pure-Python fallback (no compiler, a failed build) is a skip, which fails the run."""
    assert {Path(importlib.import_module(name).__file__).suffix for name in COMPILED} == {".so"}


def _replay(*args: str) -> dict:
    out = subprocess.run([sys.executable, "-m", "tests.grouping_replay", *args], cwd=ROOT, capture_output=True,
                         text=True, timeout=600)
    assert out.returncode == 0, out.stderr[-3000:]
    return json.loads(out.stdout)


@needs_build
def test_compiled_and_pure_python_builds_decide_alike():
    compiled, source = _replay(), _replay("--source")
    assert all(name.endswith(".so") for name in compiled.pop("modules").values())
    assert all(name.endswith(".py") for name in source.pop("modules").values())
    assert len(compiled["results"]) > 20_000 and len(compiled["aliases"]) > 0
    assert sum(e is not None for e in compiled["events"]) > 1000 and len(compiled["bad"]) >= 8
    assert sum(bool(t) and ("<secret>" in t or "<card>" in t) for t in compiled["scrubbed"]) >= 10
    assert compiled["crossed"] == [e for e in compiled["events"] if e is not None] and len(compiled["encoded"]) > 100
    for part in compiled:
        assert compiled[part] == source[part], f"{part} differs between the compiled and the pure-Python build"
