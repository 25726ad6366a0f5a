"""The flow process's share of a backfill alone: storing and judging a day's windows that were counted beforehand.

A backfill's first process stores each counted window (COPY), detects, refreshes the registries and queues alerts,
and PostgreSQL does its part of that work at the same time on the same cores. This bench counts the bench day
once (`--build`: read, scrub, group and count every window, pickled into the cache) and then replays only the
storing and judging into a fresh embedded database, timing this process's CPU and PostgreSQL's CPU (the
postmaster's children, live and ended) apart — what the scale bench cannot tell, as there both overlap the second
process's reading.

    python bench/store_replay.py --build [--n 1000000]     # once: about 2 minutes for 1M events
    python bench/store_replay.py [--n 1000000] [--windows 96]
"""

from __future__ import annotations

import argparse
import json
import os
import pickle
import shutil
import subprocess
import sys
import tempfile
import time
from datetime import timedelta
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench.scale_bench import START  # noqa: E402


def postgres_cpu(pgdata: Path) -> float:
    """CPU seconds of the embedded server: the postmaster with its ended children, plus the live backends."""
    pid = (pgdata / "postmaster.pid").read_text().split()[0]
    tick = os.sysconf("SC_CLK_TCK")

    def fields(p: str) -> list[str]:
        return Path(f"/proc/{p}/stat").read_text().rsplit(")", 1)[1].split()

    total = sum(int(x) for x in fields(pid)[11:15]) / tick  # utime, stime, cutime, cstime
    for p in filter(str.isdigit, os.listdir("/proc")):
        try:
            f = fields(p)
        except OSError:
            continue
        if f[1] == pid:
            total += (int(f[11]) + int(f[12])) / tick
    return total


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--n", type=int, default=1_000_000)
    p.add_argument("--windows", type=int, default=96)
    p.add_argument("--build", action="store_true", help="count the day once into the cache")
    p.add_argument("--cache", default=str(Path(tempfile.gettempdir()) / "ailog-scale-cache"))
    args = p.parse_args()
    from bench.scale_data import cached_events

    data = cached_events(Path(args.cache), args.n, start=START)
    counted_path = Path(args.cache) / f"counted-{data.stem}.pickle"
    home = tempfile.mkdtemp(prefix="ailog-replay-", dir="/tmp")
    for key in [k for k in os.environ if k.startswith(("ES_", "DB_"))]:
        del os.environ[key]
    os.environ.update({"AILOG_HOME": home, "AILOG_QUIET": "1"})
    from flows.common import open_state
    from tasks.analysis import analyse_window, count_window, prepare_context, windows_between
    from tasks.source import open_source

    settings, db = open_state(False)
    windows = windows_between(START, START + timedelta(days=1))
    try:
        ctx = prepare_context(settings, db, open_source(settings, [str(data)]), "replay", dry_run=False)
        if args.build:
            counted = [count_window(ctx.source, ctx.engine, w, ctx.times) for w in windows]
            for c in counted:
                c.pending = None  # the engine's objects stay here
            counted_path.write_bytes(pickle.dumps(counted, protocol=5))
            print(f"counted {len(counted)} windows into {counted_path}")
            return 0
        if not counted_path.exists():
            raise SystemExit(f"{counted_path} is missing: run with --build first")
        queue = iter(pickle.loads(counted_path.read_bytes()))
        ctx.counted = lambda window: next(queue)
        pgdata = Path(home) / "pgdata"
        pg0, cpu0, began = postgres_cpu(pgdata), time.process_time(), time.perf_counter()
        for window in windows[:args.windows]:
            analyse_window(ctx, window, mode="backfill")
        wall, cpu, pg = time.perf_counter() - began, time.process_time() - cpu0, postgres_cpu(pgdata) - pg0
        ctx.close()
        stages = {k: round(v, 1) for k, v in sorted(ctx.times.items())}
        print(f"{args.windows} windows stored and judged in {wall:.1f} s: this process {cpu:.1f} s CPU, "
              f"PostgreSQL {pg:.1f} s CPU; stages {stages}")
        print("RESULT " + json.dumps({"wall_s": round(wall, 2), "cpu_s": round(cpu, 2), "postgres_cpu_s": round(pg, 2),
                                      "stages": stages}))
        return 0
    finally:
        subprocess.run([sys.executable, "-m", "ailog.cli", "db", "stop"], cwd=home, capture_output=True)
        shutil.rmtree(home, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
