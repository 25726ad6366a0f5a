"""Detection benchmark: backfill weeks of generated history, then run the regular phase window by window over
the following days with the real command (`ailog backfill`, `ailog regular --start --end`), and score the
critical alerts against the generator's ground truth.

    python bench/detection_bench.py [--history-days 21] [--eval-days 4] [--apps 30] [--seed 11]

Prints recall of injected critical incidents, precision of critical alerts, false critical alerts per simulated
week, minutes from incident start to alert (and whether it came in the first window containing the incident),
and the share of recurring peaks suppressed from their fourth day.
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


def score(db_conn, truth: dict, eval_start: datetime, eval_end: datetime) -> dict:
    alerts = db_conn.execute(
        "SELECT kind, app, problem_id, start_ts, window_start, explanation FROM peaks"
        " WHERE alerted AND window_start >= %s AND window_start < %s ORDER BY window_start", (eval_start, eval_end)).fetchall()
    incidents = [i for i in truth["incidents"] if i["critical"] and eval_start <= parse(i["start"]) < eval_end]
    matched_alerts = set()
    delays, first_window = [], 0
    found = 0
    for inc in incidents:
        start, end = parse(inc["start"]), parse(inc["end"])
        hits = []
        for idx, (kind, app, _pid, p_start, w_start, _m) in enumerate(alerts):
            cascade_apps = {e["value"] for e in (_m or []) if e.get("field") == "app"}
            apps_ok = app in inc["apps"] or (kind == "cascade" and bool(cascade_apps & set(inc["apps"])))
            if apps_ok and start - timedelta(minutes=15) <= p_start <= end + timedelta(minutes=15):
                hits.append((w_start, idx))
        if hits:
            found += 1
            w_start, _ = min(hits)
            for _, idx in hits:
                matched_alerts.add(idx)
            alert_at = w_start + timedelta(minutes=15)
            delays.append((alert_at - start).total_seconds() / 60)
            incident_window = start.replace(minute=start.minute - start.minute % 15, second=0, microsecond=0)
            first_window += int(w_start == incident_window)
    false_alerts = len(alerts) - len(matched_alerts)
    days = (eval_end - eval_start).total_seconds() / 86400
    # recurring peaks from their fourth day on (all evaluation days are past the third)
    rec_total = rec_suppressed = 0
    for rec in truth["recurring"]:
        for d in range(int(days)):
            t = eval_start + timedelta(days=d, minutes=rec["minute_of_day"])
            rows = db_conn.execute("SELECT alerted, known FROM peaks WHERE app = %s AND start_ts >= %s AND start_ts < %s",
                                   (rec["app"], t - timedelta(minutes=20), t + timedelta(minutes=30))).fetchall()
            rec_total += 1
            rec_suppressed += int(not any(a for a, _ in rows))
    return {
        "critical_incidents": len(incidents), "alerted_incidents": found,
        "recall": round(found / len(incidents), 3) if incidents else None,
        "critical_alerts": len(alerts), "precision": round(len(matched_alerts) / len(alerts), 3) if alerts else None,
        "false_alerts_per_week": round(false_alerts / days * 7, 2),
        "minutes_to_alert_median": sorted(delays)[len(delays) // 2] if delays else None,
        "minutes_to_alert_max": max(delays) if delays else None,
        "alert_in_first_window": f"{first_window}/{found}",
        "recurring_suppressed": round(rec_suppressed / rec_total, 3) if rec_total else None,
        "missed": [f"{i['kind']} {i['app']} {i['start']} {i['error_key']}" for i in incidents
                   if not any((a[1] in i["apps"] or a[0] == "cascade") and parse(i["start"]) - timedelta(minutes=15)
                              <= a[3] <= parse(i["end"]) + timedelta(minutes=15) for a in alerts)],
    }


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--history-days", type=int, default=21)
    ap.add_argument("--eval-days", type=int, default=4)
    ap.add_argument("--apps", type=int, default=30)
    ap.add_argument("--seed", type=int, default=11)
    ap.add_argument("--workdir", default=None)
    ap.add_argument("--score-only", action="store_true", help="score an earlier run in --workdir again")
    args = ap.parse_args()
    from ailog.simulation import generate

    work = Path(args.workdir or tempfile.mkdtemp(prefix="ailog-detbench-"))
    start = date(2026, 10, 1)
    total_days = args.history_days + args.eval_days
    if args.score_only:
        return score_only(work, start, args)
    data = generate(start, total_days, args.seed, work / "logs", apps=args.apps)
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
    os.environ["AILOG_HOME"] = str(work / "home")
    from ailog.db import Database
    from blocks.settings import DatabaseSettings

    db = Database(DatabaseSettings(), work / "home")
    with db.connect() as conn:
        result = score(conn, data.truth, eval_start, eval_end)
    result.update({"events": data.events, "history_days": args.history_days, "eval_days": args.eval_days,
                   "apps": args.apps, "backfill_s": round(t_backfill), "regular_s": round(t_regular),
                   "regular_windows": args.eval_days * 96})
    print(json.dumps(result, indent=2))
    targets = {"recall": 0.95, "precision": 0.90}
    ok = all((result[k] or 0) >= v for k, v in targets.items()) and result["false_alerts_per_week"] <= 1 and \
        (result["recurring_suppressed"] or 0) >= 0.95
    print("targets met" if ok else "targets NOT met")
    return 0


def score_only(work: Path, start: date, args) -> int:
    from ailog.db import Database
    from blocks.settings import DatabaseSettings

    truth = json.loads((work / "logs" / "truth.json").read_text())
    eval_start = datetime(start.year, start.month, start.day, tzinfo=UTC) + timedelta(days=args.history_days)
    db = Database(DatabaseSettings(), work / "home")
    with db.connect() as conn:
        print(json.dumps(score(conn, truth, eval_start, eval_start + timedelta(days=args.eval_days)), indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
