"""The daily report (`problem_report_YYYY-MM-DD.json`, schema in docs/REPORT_SCHEMA.md).

Every figure is computed from the stored tables; the same data gives the same bytes (sorted, rounded, and
`generated_at` is the end of the last processed window, not the wall clock), so unchanged data is not
re-published.
"""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import orjson
import psycopg

from tasks.models import iso_z

SCHEMA_VERSION = "1.0"
SEVERITY_RANK = {"critical": 4, "high": 3, "medium": 2, "low": 1}


def _day_bounds(day: date) -> tuple[datetime, datetime]:
    start = datetime(day.year, day.month, day.day, tzinfo=UTC)
    return start, start + timedelta(days=1)


# Days and hours hold whole windows (a window lasts at most an hour and divides it): their counts are the totals
# of the windows that start in them, read from window_totals by its window_start index, not minute by minute.
def _total(conn, start: datetime, end: datetime) -> int:
    return conn.execute("SELECT coalesce(sum(count), 0)::bigint FROM window_totals WHERE window_start >= %s"
                        " AND window_start < %s", (start, end)).fetchone()[0]


def _ratio(now: int, before: int) -> float | None:
    return round((now - before) / before, 4) if before else None


def _problem_rows(conn, ids: list[str], counts: dict[str, int], prev: dict[str, int]) -> list[dict]:
    if not ids:
        return []
    rows = conn.execute(
        "SELECT problem_id, title, template, error_type, apps, status, severity, first_seen, last_seen,"
        " sample_message, muted, ticket FROM problems WHERE problem_id = ANY(%s)", (ids,)).fetchall()
    info = {r[0]: r for r in rows}
    out = []
    for pid in ids:
        r = info.get(pid)
        if r is None:
            continue
        count, before = counts.get(pid, 0), prev.get(pid, 0)
        trend = "new" if r[5] == "new" else ("up" if count > before * 1.2 else "down" if count < before * 0.8 else "flat")
        out.append({"problem_id": pid, "title": r[1] or r[2][:120], "template": r[2], "error_type": r[3],
                    "apps": sorted(r[4] or []), "count": count, "previous_day_count": before, "trend": trend,
                    "status": r[5], "severity": r[6], "first_seen": iso_z(r[7]) if r[7] else None,
                    "last_seen": iso_z(r[8]) if r[8] else None, "sample_message": (r[9] or "")[:1000],
                    "muted": bool(r[10]), "ticket": r[11]})
    return out


def build_daily_report(conn: psycopg.Connection, day: date, *, top_n: int = 10) -> dict:
    start, end = _day_bounds(day)
    # the day's events per (app, problem) in one pass over its rows: per problem, per app and each app's problems
    per_problem: dict[str, int] = {}
    apps_events: dict[str, int] = {}
    apps_problems: dict[str, int] = {}
    for app, problem_id, n in conn.execute(
            "SELECT app, problem_id, sum(count)::bigint FROM window_totals WHERE window_start >= %s"
            " AND window_start < %s GROUP BY app, problem_id", (start, end)):
        per_problem[problem_id] = per_problem.get(problem_id, 0) + n
        apps_events[app] = apps_events.get(app, 0) + n
        apps_problems[app] = apps_problems.get(app, 0) + 1
    prev_problem = dict(conn.execute(
        "SELECT problem_id, sum(count)::bigint FROM window_totals WHERE window_start >= %s AND window_start < %s"
        " GROUP BY problem_id", (start - timedelta(days=1), start)).fetchall())
    events = sum(per_problem.values())
    prev_events = _total(conn, start - timedelta(days=1), start)
    week_events = _total(conn, start - timedelta(days=7), end - timedelta(days=7))
    top_ids = [pid for pid, _ in sorted(per_problem.items(), key=lambda kv: (-kv[1], kv[0]))[:top_n]]
    first_seen_today = [r[0] for r in conn.execute(
        "SELECT problem_id FROM problems WHERE first_seen >= %s AND first_seen < %s ORDER BY problem_id", (start, end))]
    regressed = [r[0] for r in conn.execute(
        "SELECT DISTINCT problem_id FROM peaks WHERE kind = 'regression' AND start_ts >= %s AND start_ts < %s"
        " ORDER BY problem_id", (start, end))]
    peak_rows = conn.execute(
        "SELECT p.peak_id, p.problem_id, coalesce(pr.template, ''), p.app, p.kind, p.start_ts, p.end_ts, p.count,"
        " p.baseline, p.ratio, p.severity, p.known, p.alerted, p.explanation, p.incident_id FROM peaks p"
        " LEFT JOIN problems pr USING (problem_id) WHERE p.start_ts >= %s AND p.start_ts < %s"
        " ORDER BY p.start_ts, p.peak_id", (start, end)).fetchall()
    peaks = [{"peak_id": r[0], "problem_id": r[1], "template": r[2], "app": r[3], "kind": r[4], "start": iso_z(r[5]),
              "end": iso_z(r[6]), "count": r[7], "baseline": round(r[8], 2), "ratio": round(r[9], 2),
              "severity": r[10], "known": r[11], "alerted": r[12], "explanation": r[13]} for r in peak_rows]
    apps = [(app, apps_events[app], apps_problems[app]) for app in sorted(apps_events)]
    peaks_per_app: dict[str, int] = {}
    for p in peaks:
        peaks_per_app[p["app"]] = peaks_per_app.get(p["app"], 0) + 1
    hourly = _hourly(conn, start)
    windows = conn.execute("SELECT window_start, events_read, bad_documents FROM windows WHERE window_start >= %s"
                           " AND window_start < %s ORDER BY window_start", (start, end)).fetchall()
    bad: dict[str, int] = {}
    for _, _, docs in windows:
        for reason, n in (docs or {}).items():
            bad[reason] = bad.get(reason, 0) + int(n)
    present = {w[0] for w in windows}
    expected = [start + timedelta(minutes=15 * i) for i in range(96)]
    last_processed = max(present) + timedelta(minutes=15) if present else start
    return {
        "schema_version": SCHEMA_VERSION,
        "date": day.isoformat(),
        "generated_at": iso_z(min(last_processed, end)),
        "totals": {
            "events": events, "problems": len(per_problem), "new_problems": len(first_seen_today),
            "regressed_problems": len(regressed), "peaks": len(peaks),
            **severity_counts(peak_rows),
            "alerts": sum(1 for p in peaks if p["alerted"]),
            "previous_day_events": prev_events, "same_weekday_last_week_events": week_events,
            "change_vs_previous_day": _ratio(events, prev_events), "change_vs_last_week": _ratio(events, week_events),
        },
        "top_problems": _problem_rows(conn, top_ids, per_problem, prev_problem),
        "new_problems": _problem_rows(conn, first_seen_today, per_problem, prev_problem),
        "regressed_problems": _problem_rows(conn, regressed, per_problem, prev_problem),
        "peaks": peaks,
        "applications": [{"app": a, "events": n, "problems": k, "peaks": peaks_per_app.get(a, 0)} for a, n, k in apps],
        "hourly": hourly,
        "data_quality": {"events_read": sum(w[1] for w in windows), "bad_documents": dict(sorted(bad.items())),
                         "windows_expected": 96, "windows_processed": len(present),
                         "windows_missing": [iso_z(w) for w in expected if w not in present]},
    }


def severity_counts(peak_rows: list) -> dict:
    """Incidents, not rows: peaks that belong to one incident (cascade and group members, the same failure
    under another problem id) count once, and known recurring peaks are expected, not critical."""
    critical = {r[14] or r[0] for r in peak_rows if r[10] == "critical" and not r[11]}
    return {"critical_peaks": len(critical), "critical_incidents": len(critical),
            "expected_peaks": sum(1 for r in peak_rows if r[11]),
            "incidents": len({r[14] or r[0] for r in peak_rows if not r[11]})}


def _hourly(conn, start: datetime) -> list[dict]:
    """Events per hour of the day against the same hour's mean over the 7 days before."""
    rows = dict(conn.execute(
        "SELECT date_trunc('hour', window_start), sum(count)::bigint FROM window_totals WHERE window_start >= %s"
        " AND window_start < %s GROUP BY 1", (start - timedelta(days=7), start + timedelta(days=1))).fetchall())
    out = []
    for h in range(24):
        hour = start + timedelta(hours=h)
        past = [rows.get(hour - timedelta(days=d), 0) for d in range(1, 8)]
        days_with_data = sum(1 for d in range(1, 8) if (hour - timedelta(days=d)) >= min(rows, default=hour))
        baseline = sum(past) / days_with_data if days_with_data else 0.0
        out.append({"hour": iso_z(hour), "events": int(rows.get(hour, 0)), "baseline": round(baseline, 2)})
    return out


def report_bytes(report: dict) -> bytes:
    return orjson.dumps(report, option=orjson.OPT_INDENT_2 | orjson.OPT_SORT_KEYS) + b"\n"


def write_report(report: dict, output_dir: Path | str) -> Path:
    out = Path(output_dir)
    out.mkdir(parents=True, exist_ok=True)
    path = out / f"problem_report_{report['date']}.json"
    _write_if_changed(path, report_bytes(report))
    return path


def _write_if_changed(path: Path, data: bytes) -> None:
    """Atomic write; an unchanged file keeps its bytes and mtime."""
    if path.exists() and path.read_bytes() == data:
        return
    tmp = path.with_suffix(path.suffix + ".tmp")
    tmp.write_bytes(data)
    tmp.replace(path)
