"""Grouping benchmark: `ailog group` (the real command, as a subprocess) against Drain3 (defaults and generic
masks) on the same messages in one run. Prints Grouping Accuracy per dataset and throughput.

    python bench/grouping_bench.py [--data tests/data/loghub2k] [--repeat 10] [--drain3-python PATH]

Throughput: all datasets concatenated, repeated --repeat times (steady state, like Drain3's published
figure), timed inside each engine's process (our command's start-up time is measured separately on empty
input); also a cold figure on all-distinct messages (every line made unique), where caching cannot help.
"""

from __future__ import annotations

import argparse
import collections
import csv
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
DATASETS = ["Apache", "BGL", "HDFS", "HPC", "Hadoop", "OpenStack", "Spark", "Thunderbird"]


from tasks.grouping.evaluation import grouping_accuracy as ga  # noqa: E402


def load(data: Path, ds: str) -> tuple[list[str], list[str]]:
    with open(data / ds / f"{ds}_2k.log_structured.csv", newline="") as fh:
        rows = list(csv.DictReader(fh))
    return [r["Content"] for r in rows], [r["EventId"] for r in rows]


def ailog_group(lines: list[str]) -> tuple[list[str], float]:
    """Ids and wall time of the real command on these lines (start-up included)."""
    ailog = str(Path(sys.executable).with_name("ailog"))
    start = time.perf_counter()
    out = subprocess.run([ailog, "group"], input="\n".join(lines) + "\n", capture_output=True, text=True, check=True)
    return [line.split("\t")[0] for line in out.stdout.splitlines()], time.perf_counter() - start


def drain3(python: str, mode: str, lines: list[str]) -> tuple[list[str], float]:
    out = subprocess.run([python, str(ROOT / "bench" / "drain3_runner.py"), mode], input="\n".join(lines) + "\n",
                         capture_output=True, text=True, check=True)
    return out.stdout.splitlines(), float(out.stderr.strip().splitlines()[-1])


def ensure_drain3(path: str | None) -> str:
    if path:
        return path
    venv = ROOT / "bench" / ".venv-drain3"
    if not (venv / "bin" / "python").exists():
        subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
        subprocess.run([str(venv / "bin" / "pip"), "install", "-q", "drain3==0.9.11"], check=True)
    return str(venv / "bin" / "python")


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data", default=str(ROOT / "tests" / "data" / "loghub2k"))
    ap.add_argument("--repeat", type=int, default=10)
    ap.add_argument("--drain3-python", default=None)
    args = ap.parse_args()
    data = Path(args.data)
    py = ensure_drain3(args.drain3_python)
    print(f"{'dataset':<12} {'ailog GA':>9} {'Drain3 GA':>10} {'Drain3+masks GA':>16}")
    scores = collections.defaultdict(list)
    everything = []
    for ds in DATASETS:
        lines, truth = load(data, ds)
        everything += lines
        ours, _ = ailog_group(lines)
        d_def, _ = drain3(py, "defaults", lines)
        d_mask, _ = drain3(py, "masks", lines)
        row = [ga(ours, truth), ga(d_def, truth), ga(d_mask, truth)]
        for name, value in zip(("ailog", "drain3", "drain3_masks"), row, strict=True):
            scores[name].append(value)
        print(f"{ds:<12} {row[0]:>9.3f} {row[1]:>10.3f} {row[2]:>16.3f}")
    means = {k: sum(v) / len(v) for k, v in scores.items()}
    print(f"{'mean':<12} {means['ailog']:>9.3f} {means['drain3']:>10.3f} {means['drain3_masks']:>16.3f}")

    _, startup = ailog_group([])
    repeated = everything * args.repeat
    _, ours_wall = ailog_group(repeated)
    ours_rate = len(repeated) / max(ours_wall - startup, 1e-9)
    _, d_learn = drain3(py, "masks", repeated)
    _, d_learn_def = drain3(py, "defaults", repeated)
    distinct = [f"{line} #{i}" for i, line in enumerate(everything * 2)]
    _, ours_cold_wall = ailog_group(distinct)
    _, d_cold = drain3(py, "masks", distinct)
    print()
    print(f"ailog group start-up (empty input): {startup:.2f} s")
    print(f"steady state, {len(repeated)} messages ({args.repeat}× the 8 sets):")
    print(f"  ailog group     {ours_rate:>10,.0f} msg/s (wall time minus start-up)")
    print(f"  Drain3 defaults {len(repeated) / d_learn_def:>10,.0f} msg/s (add_log_message only)")
    print(f"  Drain3 + masks  {len(repeated) / d_learn:>10,.0f} msg/s (add_log_message only)")
    print(f"  ratio vs Drain3+masks: {ours_rate / (len(repeated) / d_learn):.2f}×")
    cold_rate = len(distinct) / max(ours_cold_wall - startup, 1e-9)
    print(f"all-distinct messages ({len(distinct)}): ailog group {cold_rate:,.0f} msg/s, Drain3+masks "
          f"{len(distinct) / d_cold:,.0f} msg/s, ratio {cold_rate / (len(distinct) / d_cold):.2f}×")
    return 0


if __name__ == "__main__":
    os.environ.setdefault("PYTHONHASHSEED", "0")
    tempfile.tempdir = None
    sys.exit(main())
