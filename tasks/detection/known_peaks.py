"""Known recurring peaks: learned from the peaks registry, matched against new peaks.

A peak of the same problem and app at about the same time of day on `known_peak_min_days` of the last 7 days
becomes a known peak; later matching peaks are recorded as known and not alerted — unless clearly larger
than usual. Everything is recomputed from stored peaks, so re-running a window changes nothing.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from datetime import datetime, timedelta
from statistics import median

import psycopg


@dataclass
class KnownPeak:
    known_peak_id: str
    minute_of_day: int
    weekday: int | None
    tolerance: int
    typical_count: float
    max_count: int


def minute_of_day(t: datetime) -> int:
    return t.hour * 60 + t.minute


def circular_distance(a: int, b: int) -> int:
    d = abs(a - b) % 1440
    return min(d, 1440 - d)


def load_known(conn: psycopg.Connection, pairs: list[tuple[str, str]]) -> dict[tuple[str, str], list[KnownPeak]]:
    out: dict[tuple[str, str], list[KnownPeak]] = {}
    if not pairs:
        return out
    wanted = set(pairs)
    for kp_id, p, a, mod, wd, tol, typical, mx in conn.execute(
            "SELECT known_peak_id, problem_id, app, minute_of_day, weekday, tolerance_min, typical_count, max_count"
            " FROM known_peaks WHERE problem_id = ANY(%s)", (sorted({p for p, _ in pairs}),)):
        if (p, a) in wanted:
            out.setdefault((p, a), []).append(KnownPeak(kp_id, mod, wd, tol, typical, mx))
    return out


def match_known(known: list[KnownPeak], start: datetime) -> KnownPeak | None:
    mod = minute_of_day(start)
    for kp in known:
        if circular_distance(kp.minute_of_day, mod) <= kp.tolerance and (kp.weekday is None or kp.weekday == start.weekday()):
            return kp
    return None


def learn_known_peaks(conn: psycopg.Connection, window_start: datetime, pairs: list[tuple[str, str, datetime]],
                      *, min_days: int, tolerance: int) -> int:
    """Upsert known peaks for (problem, app, start) peaks of this window that recur on enough recent days."""
    learned = 0
    for problem_id, app, start in pairs:
        rows = conn.execute(
            "SELECT start_ts, count FROM peaks WHERE problem_id = %s AND app = %s AND kind IN ('spike', 'burst')"
            " AND start_ts >= %s AND start_ts < %s", (problem_id, app, start - timedelta(days=7), start + timedelta(hours=1))
        ).fetchall()
        mod = minute_of_day(start)
        similar = [(ts, n) for ts, n in rows if circular_distance(minute_of_day(ts), mod) <= tolerance]
        days = {ts.date() for ts, _ in similar}
        if len(days) < min_days:
            continue
        typical_mod = int(median(minute_of_day(ts) for ts, _ in similar))
        kp_id = "R" + hashlib.sha1(f"{problem_id}|{app}|{round(typical_mod / 30)}".encode()).hexdigest()[:15]
        counts = [n for _, n in similar]
        conn.execute(
            "INSERT INTO known_peaks (known_peak_id, problem_id, app, minute_of_day, weekday, tolerance_min,"
            " typical_count, max_count, times_seen, first_seen, last_seen) VALUES (%s,%s,%s,%s,NULL,%s,%s,%s,%s,%s,%s)"
            " ON CONFLICT (known_peak_id) DO UPDATE SET minute_of_day = EXCLUDED.minute_of_day,"
            " typical_count = EXCLUDED.typical_count, max_count = GREATEST(known_peaks.max_count, EXCLUDED.max_count),"
            " times_seen = GREATEST(known_peaks.times_seen, EXCLUDED.times_seen),"
            " first_seen = LEAST(known_peaks.first_seen, EXCLUDED.first_seen),"
            " last_seen = GREATEST(known_peaks.last_seen, EXCLUDED.last_seen), updated_at = now()",
            (kp_id, problem_id, app, typical_mod, tolerance, float(median(counts)), max(counts), len(days),
             min(ts for ts, _ in similar), max(ts for ts, _ in similar)))
        learned += 1
    return learned
