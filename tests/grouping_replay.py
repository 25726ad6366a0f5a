"""Replays fixed input through a fresh grouping engine and prints everything it decided, as JSON.

Run as `python -m tests.grouping_replay [--source]`: with --source the grouping modules are imported from their
.py files even where compiled ones exist (tests/test_grouping_compiled.py compares the two outputs).
"""

from __future__ import annotations

import importlib.abc
import importlib.util
import json
import random
import sys
from datetime import UTC, datetime
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
COMPILED = ("tasks.grouping.masking", "tasks.grouping.miner", "tasks.grouping.engine")


class _Sources(importlib.abc.MetaPathFinder):
    """Finds the compiled modules' .py files first: the pure-Python build of the same source."""

    def find_spec(self, name, path=None, target=None):
        if name in COMPILED:
            return importlib.util.spec_from_file_location(name, ROOT / (name.replace(".", "/") + ".py"))
        return None


def messages() -> list[tuple[str, str | None]]:
    """(message, stack trace): the Loghub sets, word-variable families, traces and hostile strings."""
    from tests.test_grouping_keys import DATASETS, loghub, word_families

    out: list[tuple[str, str | None]] = [(line, None) for ds in DATASETS for line in loghub(ds)]
    out += [(line, None) for line in word_families(3000)]
    rng = random.Random(5)
    frames = ["\tat com.bank.pay.PayService.run(PayService.java:10)", "\tat org.spring.Filter.do(Filter.java:1)",
              "\tat com.bank.pay.Job.lambda$run$0(Job.java:7)", "Caused by: java.io.IOException: disk full"]
    for i in range(500):
        head = f"java.lang.IllegalStateException: transfer {i} failed for {rng.choice(['anna', 'bob', 'eve'])}"
        out.append((head, "\n".join([head, *rng.sample(frames, rng.randint(0, 4))])))
        out.append((head, None))
    alphabet = "ab Z9./@'\"<>=:[](),;\t\r\n\x00\x07\x7f\ud83d\u00e9\u0663\u2003"
    for _ in range(3000):
        out.append(("".join(rng.choice(alphabet) for _ in range(rng.randint(0, 80))), None))
    out += [("x" * 30_000, None), ("a." * 5_000 + "Exception", None), ("<" * 3_000 + "'" * 3_000, None)]
    return out


def replay() -> dict:
    from tasks.grouping import GroupingEngine
    from tasks.models import LogEvent

    modules = {name: Path(sys.modules[name].__file__).name for name in COMPILED}
    engine = GroupingEngine(cache_bytes=200_000)  # small: the cache's generations turn over many times
    at = datetime(2026, 11, 20, tzinfo=UTC)
    results = []
    for message, trace in messages():
        r = engine.group_event(LogEvent(timestamp=at, message=message, stack_trace=trace))
        results.append([r.problem_id, r.template, r.error_type])
    miner = engine.miner
    return {"modules": modules, "results": results, "aliases": sorted(miner.aliases.items()),
            "clusters": sorted((c.problem_id, c.template, c.size) for c in miner.clusters.values()),
            "keys": sorted(miner.fresh_keys), "comparisons": miner.comparisons, "cache_bytes": engine.cache_bytes}


if __name__ == "__main__":
    if "--source" in sys.argv:
        sys.meta_path.insert(0, _Sources())
    sys.stdout.write(json.dumps(replay()))
