"""Scale benchmark: a bank's day of errors through the real backfill, against the floor of merely reading it.

For each N (default 100k and 1M; 5M with --with-5m), in one run:
  (a) the floor: every document of the day read from the source with the same client, page size, windows and
      garbage-collector thresholds as the backfill's reader, doing nothing else — from a local server speaking
      the Elasticsearch protocol (the real `elasticsearch` client, point in time + search_after) and from the
      NDJSON file (orjson per line) — read just before and just after (b), which is compared with their mean;
  (b) the full backfill of that day into PostgreSQL (grouping, counts, detection, registries, reports), from
      Elasticsearch and from the file, each in a fresh process with a fresh embedded database — created and
      migrated before the flow starts, as a deployment's database exists before its run (printed as `db init s`).
It prints events/s, the ratio (b)/(a), peak RSS of the backfill process, the machine's CPU-seconds of (a) and
(b) and the seconds per stage, then a
14-day gzipped history read window by window (one pass: a constant multiple of decompressing and parsing it
once; --history-backfill also backfills it) and one regular 15-minute window of 100k events after a day of
history. Exits 1 when a target is missed (see TARGETS).

    python bench/scale_bench.py [--sizes 100000,1000000] [--with-5m] [--cache DIR] [--skip-history]
                                [--history-backfill] [--skip-regular] [--sources es,ndjson]
                                [--json FILE]
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

DAY = date(2026, 11, 20)
START = datetime(DAY.year, DAY.month, DAY.day, tzinfo=UTC)
TARGETS = {"ratio_es_1m": 3.0, "seconds_1m": 60.0, "rss_mib": 1024.0, "regular_s": 30.0, "history_per_event": 1.5,
           "history_growth": 2.6}


# -- the child process: one flow run, fresh AILOG_HOME, its peak RSS measured by the parent ----------------------
def child(spec: dict) -> None:
    from ailog.commands._prefect_env import prepare_prefect_env

    prepare_prefect_env()
    from flows.backfill import backfill
    from flows.regular import regular

    out: dict = {}
    # the database exists before the run, as a deployment's does (DB_HOST; its runs refuse the embedded one): creating
    # and migrating a fresh embedded cluster (initdb, about 1.6 s, once per AILOG_HOME) is timed apart, not in (b)
    began = time.perf_counter()
    from flows.common import open_state

    open_state(False)
    out["db_init_s"] = round(time.perf_counter() - began, 2)
    if not os.environ.get("PREFECT_API_URL"):  # the command's temporary Prefect API (about 15 s) starts apart too
        from prefect.server.api.server import SubprocessASGIServer

        began = time.perf_counter()
        SubprocessASGIServer().start()  # one per process: the flow's client finds it running
        out["api_start_s"] = round(time.perf_counter() - began, 2)
    for step in spec["steps"]:
        cpu, began = machine_cpu_s(), time.perf_counter()
        if step["flow"] == "backfill":
            summary = backfill(start=step["start"], end=step["end"], publish=False, output_dir=spec["output"],
                               input_paths=step.get("input"))
        else:
            summary = regular(start=step["start"], end=step["end"], output_dir=spec["output"],
                              input_paths=step.get("input"))
        summary["call_s"] = round(time.perf_counter() - began, 2)
        summary["cpu_s"] = round(machine_cpu_s() - cpu, 1)
        out[step["name"]] = {k: summary.get(k) for k in ("events", "duration_s", "call_s", "cpu_s", "stage_seconds", "windows",
                                                         "peaks", "days_processed", "read_ahead_rss_mib")}
    import resource

    # the pod holds this process and its read-ahead process (tasks.read_ahead) at once: count both peaks
    out["rss_mib"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024 + max(
        (r.get("read_ahead_rss_mib") or 0 for r in out.values() if isinstance(r, dict)), default=0)
    print("RESULT " + json.dumps(out), flush=True)


def run_child(spec: dict, env_extra: dict | None = None) -> tuple[dict, float]:
    """Run the steps in a fresh process; returns its result and its peak RSS in MiB."""
    home = tempfile.mkdtemp(prefix="ailog-scale-", dir="/tmp")
    env = {k: v for k, v in os.environ.items() if not k.startswith(("ES_", "DB_", "PREFECT_API_URL"))}
    env.update({"AILOG_HOME": home, "AILOG_QUIET": "1", **(env_extra or {})})
    spec = {**spec, "output": str(Path(home) / "reports")}
    with tempfile.TemporaryFile() as out, tempfile.TemporaryFile() as err:
        proc = subprocess.Popen([sys.executable, __file__, "--child", json.dumps(spec)], env=env, cwd=home,
                                stdout=out, stderr=err)
        _, status, usage = os.wait4(proc.pid, 0)  # this child's own peak RSS (communicate() would reap it)
        proc.returncode = os.waitstatus_to_exitcode(status)
        out.seek(0)
        err.seek(0)
        stdout, stderr = out.read(), err.read()
    rss = usage.ru_maxrss / 1024
    subprocess.run([sys.executable, "-m", "ailog.cli", "db", "stop"], env=env, cwd=home, capture_output=True)
    shutil.rmtree(home, ignore_errors=True)  # its database: hundreds of MB a run
    lines = [line for line in stdout.decode().splitlines() if line.startswith("RESULT ")]
    if proc.returncode or not lines:
        raise SystemExit(f"child failed ({proc.returncode}):\n{stdout.decode()[-2000:]}\n{stderr.decode()[-4000:]}")
    result = json.loads(lines[-1][7:])
    return result, max(rss, result.pop("rss_mib"))


def machine_cpu_s() -> float:
    """CPU-seconds every process of this machine has used so far (`/proc/stat`: user, nice, system, irq and softirq
    time; not idle, iowait or steal). Around a step it counts what all its processes used — reading, grouping, the
    flow, PostgreSQL, the Prefect API and the Elasticsearch-protocol server — and, since nothing else runs during a
    benchmark, little more: unlike wall time it does not depend on how many cores the step keeps busy."""
    with open("/proc/stat") as fh:
        user, nice, system, _idle, _iowait, irq, softirq = (int(x) for x in fh.readline().split()[1:8])
    return (user + nice + system + irq + softirq) / os.sysconf("SC_CLK_TCK")


# -- floors ---------------------------------------------------------------------------------------------------------
def floor_ndjson(path: Path) -> tuple[int, float, float]:
    """Every line of the file parsed with orjson: documents, seconds, the machine's CPU-seconds."""
    import orjson

    from bench.scale_data import _opener

    cpu, began, n = machine_cpu_s(), time.perf_counter(), 0
    with _opener(path)(path, "rb") as fh:
        for line in fh:
            orjson.loads(line)
            n += 1
    return n, time.perf_counter() - began, machine_cpu_s() - cpu


def floor_es(url: str, days: int = 1) -> tuple[int, float, float]:
    """Every document of the day through the real client, window by window, as the backfill reads them, with the
    garbage collector set as the backfill's reading process sets it (`tasks.analysis.tune_gc`): with Python's
    defaults collecting cost this read about half its time (each page's 5,000 documents are alive while the next
    objects are made), which the backfill does not pay — the floor must not either. Returns the documents, the
    seconds and the machine's CPU-seconds (the reader's and the server's)."""
    import gc

    from blocks.settings import ElasticsearchSettings
    from tasks.analysis import tune_gc, windows_between
    from tasks.source.elasticsearch import ElasticsearchSource

    source = ElasticsearchSource(ElasticsearchSettings(url=url, index="logs-bench"))
    thresholds = gc.get_threshold()
    tune_gc()
    try:
        cpu, began, n = machine_cpu_s(), time.perf_counter(), 0
        for window in windows_between(START, START + timedelta(days=days)):
            pit = source.client.open_point_in_time(index="logs-bench", keep_alive="2m")["id"]
            try:
                for _doc in source._pages(window, pit, None):
                    n += 1
            finally:
                source.client.close_point_in_time(id=pit)
        return n, time.perf_counter() - began, machine_cpu_s() - cpu
    finally:
        gc.set_threshold(*thresholds)


# -- the runs ---------------------------------------------------------------------------------------------------------
def day_steps(name: str, days: int = 1, input_path: Path | None = None) -> list[dict]:
    end = (START + timedelta(days=days - 1)).date().isoformat()
    step = {"name": name, "flow": "backfill", "start": START.date().isoformat(), "end": end}
    if input_path is not None:
        step["input"] = [str(input_path)]
    return [step]


def measure_size(n: int, cache: Path, sources: tuple[str, ...] = ("es", "ndjson")) -> dict:
    from bench.es_server import ServerProcess
    from bench.scale_data import cached_events

    path = cached_events(cache, n, start=START)
    row: dict = {"n": n, "load": os.getloadavg()[0]}
    results = {}
    # each floor is read just before and just after its backfill, and (b) is compared with their mean: a shared
    # machine's speed drifts over minutes (bench/README.md, "sixteenth step"), the two floors show by how much
    if "es" in sources:  # the server holds every document in memory (about 4.3 GiB at 1M): only when measured
        with ServerProcess(path) as (url, count):
            before = floor_es(url)
            results["es"], row["es_rss_mib"] = run_child({"steps": day_steps("es")},
                                                         {"ES_HOST": url, "ES_INDEX": "logs-bench"})
            after = floor_es(url)
        assert before[0] == after[0] == count == n, (before[0], after[0], count, n)
        _floors(row, "es", before, after)
    if "ndjson" in sources:
        before = floor_ndjson(path)
        results["ndjson"], row["ndjson_rss_mib"] = run_child({"steps": day_steps("ndjson", input_path=path)})
        _floors(row, "ndjson", before, floor_ndjson(path))
    for key, result in ((k, v[k]) for k, v in results.items()):
        assert result["events"] == n, (key, result["events"], n)
        row[f"{key}_db_init"] = results[key]["db_init_s"]
        row[f"{key}_backfill"] = result["duration_s"]
        row[f"{key}_backfill_cpu"] = result["cpu_s"]
        row[f"{key}_api_start"] = results[key].get("api_start_s")
        row[f"{key}_stages"] = result["stage_seconds"]
    row["load_after"] = os.getloadavg()[0]
    return row


def _floors(row: dict, key: str, before: tuple[int, float, float], after: tuple[int, float, float]) -> None:
    """The floor read before and after a backfill: both kept, their mean compared with it."""
    row[f"{key}_reads"] = (round(before[1], 2), round(after[1], 2))
    row[f"{key}_read"] = (before[1] + after[1]) / 2
    row[f"{key}_read_cpu"] = (before[2] + after[2]) / 2


def measure_history(cache: Path, days: int, events: int) -> dict:
    from bench.scale_data import cached_events

    path = cached_events(cache, events, start=START, days=days, gz=True)
    result, rss = run_child({"steps": day_steps("history", days=days, input_path=path)})
    r = result["history"]
    return {"days": days, "events": r["events"], "seconds": r["duration_s"], "read_s": r["stage_seconds"].get("read"),
            "stages": r["stage_seconds"], "rss_mib": rss, "bytes": path.stat().st_size}


def measure_history_read(cache: Path, days: int, events: int) -> dict:
    """The file source alone over a gzipped multi-day history: every window read, against decompressing and
    parsing the file once. One pass (plus the index pass) keeps the ratio constant whatever the days."""
    from bench.scale_data import cached_events
    from blocks.settings import ElasticsearchSettings
    from tasks.analysis import windows_between
    from tasks.models import SourceStats
    from tasks.source.files import FileSource

    path = cached_events(cache, events, start=START, days=days, gz=True)
    _, floor, _ = floor_ndjson(path)
    source = FileSource([str(path)], ElasticsearchSettings().fields)
    began, n = time.perf_counter(), 0
    for window in windows_between(START, START + timedelta(days=days)):
        for _event in source.read_window(window, SourceStats()):
            n += 1
    seconds = time.perf_counter() - began
    source.close()
    assert n == events, (n, events)
    return {"days": days, "events": n, "floor_s": floor, "read_s": seconds, "windows": days * 96}


def measure_regular(cache: Path, n: int = 100_000) -> dict:
    from bench.scale_data import cached_events, write_events

    history = cached_events(cache, n, start=START)
    at = START + timedelta(days=1, hours=10)
    window_file = cache / f"window-{n}.ndjson"
    if not window_file.exists():
        write_events(window_file, n, start=at, days=1, span_seconds=900)
    steps = [*day_steps("history", input_path=history),
             {"name": "regular", "flow": "regular", "start": at.isoformat(), "end": (at + timedelta(minutes=15)).isoformat(),
              "input": [str(window_file)]}]
    result, rss = run_child({"steps": steps})
    r = result["regular"]
    return {"events": r["events"], "seconds": r["duration_s"], "call_s": r["call_s"], "stages": r["stage_seconds"],
            "rss_mib": rss}


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--sizes", default="100000,1000000")
    p.add_argument("--with-5m", action="store_true", help="also N = 5,000,000 (about 10 minutes more)")
    p.add_argument("--cache", default=str(Path(tempfile.gettempdir()) / "ailog-scale-cache"))
    p.add_argument("--history-days", type=int, default=14)
    p.add_argument("--history-events", type=int, default=400_000)  # the 14-day history
    p.add_argument("--sources", default="es,ndjson",
                   help="backfills to run: es, ndjson or both (ndjson alone starts no Elasticsearch-protocol server:"
                        " at 5M it would hold about 20 GiB)")
    p.add_argument("--skip-history", action="store_true", help="skip the gzipped history's read measurement")
    p.add_argument("--history-backfill", action="store_true",
                   help="also backfill the whole gzipped history into PostgreSQL (long: every window is judged)")
    p.add_argument("--skip-regular", action="store_true")
    p.add_argument("--json", help="also write the results here")
    p.add_argument("--child", help=argparse.SUPPRESS)
    args = p.parse_args()
    if args.child:
        child(json.loads(args.child))
        return 0
    cache = Path(args.cache)
    sizes = [int(s) for s in args.sizes.split(",") if s] + ([5_000_000] if args.with_5m else [])
    results: dict = {"sizes": [], "cpus": os.cpu_count()}
    missed: list[str] = []
    print(f"{'N':>9} {'source':>7} {'read s':>7} {'backfill s':>10} {'events/s':>9} {'ratio':>6} {'RSS MiB':>8}  "
          "load  db init s  read CPU-s  backfill CPU-s  CPU ratio  read s before/after  stages (s)")
    for n in sizes:
        sources = tuple(args.sources.split(","))
        row = measure_size(n, cache, sources)
        results["sizes"].append(row)
        for key in sources:
            read, full = row[f"{key}_read"], row[f"{key}_backfill"]
            stages = " ".join(f"{k}={v:.1f}" for k, v in row[f"{key}_stages"].items())
            print(f"{n:>9} {key:>7} {read:>7.1f} {full:>10.1f} {n / full:>9.0f} {full / read:>6.1f} "
                  f"{row[f'{key}_rss_mib']:>8.0f}  {row['load']:.1f}  {row[f'{key}_db_init']:>9.1f}  "
                  f"{row[f'{key}_read_cpu']:>10.1f}  {row[f'{key}_backfill_cpu']:>14.1f}  "
                  f"{row[f'{key}_backfill_cpu'] / row[f'{key}_read_cpu']:>9.1f}  "
                  f"{'/'.join(f'{x:.1f}' for x in row[f'{key}_reads']):>19}  {stages}", flush=True)
        if n == 1_000_000 and "es" in sources:
            if row["es_backfill"] / row["es_read"] > TARGETS["ratio_es_1m"]:
                missed.append(f"1M backfill {row['es_backfill'] / row['es_read']:.1f}x the bare ES read (target 3x)")
            if row["es_backfill"] > TARGETS["seconds_1m"]:
                missed.append(f"1M backfill took {row['es_backfill']:.0f} s (target 60 s)")
        rss = max(row.get(f"{k}_rss_mib", 0) for k in sources)
        if rss > TARGETS["rss_mib"]:
            missed.append(f"peak RSS {rss:.0f} MiB at N={n} (target 1 GiB)")
    if not args.skip_history:
        half = measure_history_read(cache, args.history_days // 2, args.history_events // 2)
        hr = measure_history_read(cache, args.history_days, args.history_events)
        results["history_read"] = [half, hr]
        growth = hr["read_s"] / half["read_s"]
        for h in (half, hr):
            print(f"\nhistory read: {h['days']} days ({h['windows']} windows), {h['events']} events gzipped: every "
                  f"window read in {h['read_s']:.1f} s ({1e6 * h['read_s'] / h['events']:.0f} µs/event) vs "
                  f"{h['floor_s']:.1f} s to decompress and parse the file once", end="")
        print(f"\ntwice the days and events: {growth:.2f}x the time (linear: 2.0)", flush=True)
        if growth > TARGETS["history_growth"]:
            missed.append(f"reading twice the gzipped history took {growth:.1f}x the time (not linear)")
    if args.history_backfill:
        h = measure_history(cache, args.history_days, args.history_events)
        results["history"] = h
        one_day = next((r for r in results["sizes"] if r["n"] == min(sizes) and "ndjson_backfill" in r), None)
        per_event_day = one_day["ndjson_backfill"] / one_day["n"] if one_day else None
        per_event = h["seconds"] / h["events"]
        print(f"\nhistory: {h['days']} days, {h['events']} events gzipped ({h['bytes'] / 1e6:.0f} MB): {h['seconds']:.1f} s "
              f"({h['events'] / h['seconds']:.0f} events/s; read {h['read_s']:.1f} s), RSS {h['rss_mib']:.0f} MiB"
              + (f"; per event {per_event / per_event_day:.2f}x a single plain day's" if per_event_day else ""))
        if per_event_day and per_event > TARGETS["history_per_event"] * per_event_day:
            missed.append(f"gzipped history costs {per_event / per_event_day:.1f}x per event a single day's")
    if not args.skip_regular:
        r = measure_regular(cache)
        results["regular"] = r
        print(f"\nregular window: {r['events']} events in {r['seconds']:.1f} s of flow time ({r['call_s']:.1f} s with "
              f"the flow engine), after a day of history; RSS {r['rss_mib']:.0f} MiB; "
              + " ".join(f"{k}={v:.1f}" for k, v in (r["stages"] or {}).items()))
        if r["seconds"] > TARGETS["regular_s"]:
            missed.append(f"regular window took {r['seconds']:.0f} s (target 30 s)")
    results["missed"] = missed
    if args.json:
        Path(args.json).write_text(json.dumps(results, indent=2))
    print("\n" + ("targets missed:\n  " + "\n  ".join(missed) if missed else "all targets met"))
    return 1 if missed else 0


if __name__ == "__main__":
    sys.exit(main())
