"""Detection benchmark: backfill weeks of generated history, then run the regular phase window by window over
the following days with the real command (`ailog backfill`, `ailog regular --start --end`), and score the
critical alerts against the generator's ground truth.

    python bench/detection_bench.py [--history-days 7] [--eval-days 3] [--apps 12] [--seeds 1,2,3,4,5]

Alerts are matched to the truth's incidents by problem (the incident's error type in one of its applications,
overlapping in time). Prints per seed and in total: recall of critical incidents, precision of alerts (alerts on
grey-zone incidents, sized near the thresholds, count neither way), messages per incident (distinct alerted
incidents of ours per true incident; re-alerts of the same incident are escalations), minutes from an
incident's first event to its alert (window end + ingest lag), and alerts on recurring batch peaks. Exits 1 when
recall < 1.0, precision < 0.95, more than one message per incident, a recurring peak alerts, or the median
latency exceeds 20 minutes.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))


def run(cmd: list[str], env: dict) -> float:
    began = time.monotonic()
    subprocess.run(cmd, env=env, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    return time.monotonic() - began


def parse(ts: str) -> datetime:
    return datetime.fromisoformat(ts.replace("Z", "+00:00"))


LAG = timedelta(minutes=5)  # the ingest lag: the earliest a run reads a closed window (AnalysisSettings)


def load_alerts(conn, eval_start: datetime, eval_end: datetime) -> list[dict]:
    """Every alerted peak of the evaluation days, with the (app, error type) pairs it speaks for: its own, and
    for a group/cascade those of the member peaks rolled up into the same incident in the same window."""
    rows = conn.execute(
        "SELECT p.peak_id, p.kind, p.app, p.problem_id, p.start_ts, p.window_start, p.incident_id, pr.error_type"
        " FROM peaks p LEFT JOIN problems pr USING (problem_id) WHERE p.window_start >= %s AND p.window_start < %s",
        (eval_start, eval_end)).fetchall()
    by_incident: dict[tuple, set] = {}
    for _, kind, app, _, _, w, inc, etype in rows:
        if kind != "cascade":
            by_incident.setdefault((w, inc), set()).add((app, etype))
    alerted = {r[0] for r in conn.execute("SELECT peak_id FROM peaks WHERE alerted AND window_start >= %s"
                                          " AND window_start < %s", (eval_start, eval_end))}
    out = []
    for peak_id, kind, app, problem_id, start, w, inc, etype in rows:
        if peak_id not in alerted:
            continue
        pairs = by_incident.get((w, inc), set()) if kind == "cascade" else {(app, etype)}
        out.append({"peak_id": peak_id, "kind": kind, "app": app, "problem_id": problem_id, "start": start,
                    "window_start": w, "incident_id": inc, "pairs": pairs})
    return out


def matches(alert: dict, inc: dict) -> bool:
    """Same problem (the generator's error type in one of the incident's apps), overlapping in time."""
    start, end = parse(inc["start"]), parse(inc["end"])
    if not start - timedelta(minutes=15) <= alert["start"] <= end + timedelta(minutes=15):
        return False
    return any(app in inc["apps"] and etype == inc["error_type"] for app, etype in alert["pairs"])


def score(db_conn, truth: dict, eval_start: datetime, eval_end: datetime) -> dict:
    alerts = load_alerts(db_conn, eval_start, eval_end)
    window = [i for i in truth["incidents"] if eval_start <= parse(i["start"]) < eval_end]
    critical = [i for i in window if i["critical"]]
    grey = [i for i in window if i["critical"] is None]
    true_alerts, grey_alerts = set(), set()
    found, delays, messages, escalations, missed = 0, [], [], 0, []
    for inc in critical:
        hits = [a for a in alerts if matches(a, inc)]
        if not hits:
            missed.append(f"{inc['id']} {inc['kind']} {inc['apps'][:3]} {inc['start']} {inc['error_key']} "
                          f"count={inc['count']} factor={inc.get('factor')}")
            continue
        found += 1
        true_alerts |= {a["peak_id"] for a in hits}
        first = min(a["window_start"] for a in hits)
        delays.append((first + timedelta(minutes=15) + LAG - parse(inc["start"])).total_seconds() / 60)
        incidents = {a["incident_id"] for a in hits}
        messages.append(len(incidents))  # first messages: one per alerted incident of ours
        escalations += len(hits) - len(incidents)
    for inc in grey:
        grey_alerts |= {a["peak_id"] for a in alerts if matches(a, inc)}
    judged = [a for a in alerts if a["peak_id"] in true_alerts or a["peak_id"] not in grey_alerts]
    false = [a for a in judged if a["peak_id"] not in true_alerts]
    recurring_alerts = 0
    for rec in truth["recurring"]:
        for a in alerts:
            minute = a["start"].hour * 60 + a["start"].minute
            if a["app"] == rec["app"] and abs(minute - rec["minute_of_day"]) <= 30:
                recurring_alerts += 1
    days = (eval_end - eval_start).total_seconds() / 86400
    return {
        "critical_incidents": len(critical), "alerted_incidents": found, "grey_incidents": len(grey),
        "not_critical_incidents": len(window) - len(critical) - len(grey),
        "alerts": len(alerts), "true_alerts": len(true_alerts), "false_alerts": len(false),
        "grey_alerts": len(grey_alerts - true_alerts),
        "recall": round(found / len(critical), 3) if critical else None,
        "precision": round(1 - len(false) / len(judged), 3) if judged else None,
        "false_alerts_per_week": round(len(false) / days * 7, 2),
        "max_messages_per_incident": max(messages, default=0), "escalations": escalations,
        "latency_minutes": sorted(delays),
        "recurring_alerts": recurring_alerts,
        "missed": missed, "false": [f"{a['kind']} {a['app']} {a['problem_id']} {a['start'].isoformat()}" for a in false],
    }


def run_seed(seed: int, args, work: Path) -> dict:
    from ailog.simulation import generate

    start = date(2026, 10, 1)
    data = generate(start, args.history_days + args.eval_days, seed, work / "logs", apps=args.apps)
    files = [str(p) for p in data.files]
    env = {**os.environ, "AILOG_HOME": str(work / "home"), "AILOG_QUIET": "1"}
    for k in [k for k in env if k.startswith(("DB_", "ES_", "TEAMS_", "CONFLUENCE_"))]:
        del env[k]
    ailog = str(Path(sys.executable).with_name("ailog"))
    history_end = start + timedelta(days=args.history_days - 1)
    t_backfill = run([ailog, "backfill", "--start", start.isoformat(), "--end", history_end.isoformat(), "--input",
                      *files, "--output", str(work / "reports"), "--no-publish"], env)
    eval_start = datetime(history_end.year, history_end.month, history_end.day, tzinfo=UTC) + timedelta(days=1)
    eval_end = eval_start + timedelta(days=args.eval_days)
    t_regular = run([ailog, "regular", "--start", eval_start.isoformat(), "--end", eval_end.isoformat(), "--input",
                     *files, "--output", str(work / "reports")], env)
    try:
        result = score_dir(work, data.truth, eval_start, eval_end)
    finally:
        from core.db.embedded import stop_embedded

        stop_embedded(work / "home")  # never leave a server running
    result.update({"seed": seed, "events": data.events, "backfill_s": round(t_backfill), "regular_s": round(t_regular)})
    return result


def score_dir(work: Path, truth: dict, eval_start: datetime, eval_end: datetime) -> dict:
    from blocks.settings import DatabaseSettings
    from core.db import Database

    db = Database(DatabaseSettings(), work / "home")
    with db.connect() as conn:
        return score(conn, truth, eval_start, eval_end)


def verdict(results: list[dict]) -> tuple[dict, list[str]]:
    """Totals over the seeds and the targets they miss (an empty list: all met)."""
    critical = sum(r["critical_incidents"] for r in results)
    found = sum(r["alerted_incidents"] for r in results)
    judged = sum(r["true_alerts"] + r["false_alerts"] for r in results)
    delays = sorted(d for r in results for d in r["latency_minutes"])
    total = {"seeds": [r["seed"] for r in results], "critical_incidents": critical, "alerted_incidents": found,
             "recall": round(found / critical, 3) if critical else None,
             "precision": round(1 - sum(r["false_alerts"] for r in results) / judged, 3) if judged else None,
             "false_alerts": sum(r["false_alerts"] for r in results),
             "grey_incidents": sum(r["grey_incidents"] for r in results),
             "not_critical_incidents": sum(r["not_critical_incidents"] for r in results),
             "max_messages_per_incident": max((r["max_messages_per_incident"] for r in results), default=0),
             "escalations": sum(r["escalations"] for r in results),
             "recurring_alerts": sum(r["recurring_alerts"] for r in results),
             "latency_median_min": delays[len(delays) // 2] if delays else None,
             "latency_max_min": delays[-1] if delays else None}
    failed = []
    if (total["recall"] or 0) < 1.0:
        failed.append(f"recall {total['recall']} < 1.0")
    if (total["precision"] or 0) < 0.95:
        failed.append(f"precision {total['precision']} < 0.95")
    if total["max_messages_per_incident"] > 1:
        failed.append(f"{total['max_messages_per_incident']} messages for one incident")
    if total["recurring_alerts"]:
        failed.append(f"{total['recurring_alerts']} recurring peak(s) alerted")
    if total["latency_median_min"] is not None and total["latency_median_min"] > 20:
        failed.append(f"median latency {total['latency_median_min']} min > 20")
    return total, failed


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--history-days", type=int, default=7)
    ap.add_argument("--eval-days", type=int, default=3)
    ap.add_argument("--apps", type=int, default=12)
    ap.add_argument("--seeds", default="1,2,3,4,5", help="comma-separated generator seeds")
    ap.add_argument("--workdir", default=None)
    ap.add_argument("--score-only", action="store_true", help="score earlier runs in --workdir again")
    args = ap.parse_args()
    work = Path(args.workdir or tempfile.mkdtemp(prefix="ailog-detbench-"))
    results = []
    for seed in [int(s) for s in args.seeds.split(",")]:
        seed_dir = work / f"seed-{seed}"
        if args.score_only:
            truth = json.loads((seed_dir / "logs" / "truth.json").read_text())
            eval_start = datetime(2026, 10, 1, tzinfo=UTC) + timedelta(days=args.history_days)
            try:
                result = score_dir(seed_dir, truth, eval_start, eval_start + timedelta(days=args.eval_days))
            finally:
                from core.db.embedded import stop_embedded

                stop_embedded(seed_dir / "home")
            result["seed"] = seed
        else:
            result = run_seed(seed, args, seed_dir)
        results.append(result)
        print(json.dumps({k: v for k, v in result.items() if k != "latency_minutes"}, indent=2, default=str),
              flush=True)
    total, failed = verdict(results)
    print(json.dumps(total, indent=2))
    print(f"workdir: {work}")
    print("targets met" if not failed else "targets NOT met: " + "; ".join(failed))
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
