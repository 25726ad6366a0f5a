"""Which windows a regular run judges and whether their critical peaks may still wake someone.

A window judged after its time (a failed or late run left it behind, or late logs changed it) still alerts
while it is recent enough to act on — marked as late, with how late. Older ones are told in one summary
message per run instead of being silent. Backfill never alerts.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from datetime import datetime, timedelta

import psycopg

from tasks.models import SourceStats, Window, iso_z


@dataclass(frozen=True)
class Liveness:
    """What a window's critical peaks may do: alert now (maybe late), or go into the run's late summary."""

    alert: bool
    late_minutes: int = 0
    summarise: bool = False


def judge_liveness(mode: str, window: Window, now: datetime | None, live_within: timedelta) -> Liveness:
    if mode == "backfill":
        return Liveness(alert=False)
    if mode == "regular":
        return Liveness(alert=True)
    if now is None:  # a catch-up window without a clock cannot say how late it is: tell it in the summary
        return Liveness(alert=False, summarise=True)
    late = max(timedelta(0), now - window.end)
    minutes = int(late.total_seconds() // 60)
    if late <= live_within:
        return Liveness(alert=True, late_minutes=minutes)
    return Liveness(alert=False, late_minutes=minutes, summarise=True)


def lookback_windows(conn: psycopg.Connection, due: list[Window], count: int) -> list[Window]:
    """The ``count`` already processed windows just before the first due window: re-read every run, so
    events that reached the source after their window was judged replace its counts (late logs)."""
    if not due or count <= 0:
        return []
    step = due[0].end - due[0].start
    wanted = [Window(due[0].start - step * i, due[0].start - step * (i - 1)) for i in range(count, 0, -1)]
    done = {r[0] for r in conn.execute("SELECT window_start FROM windows WHERE window_start = ANY(%s)",
                                       ([w.start for w in wanted],))}
    return [w for w in wanted if w.start in done]


def looks_incomplete(conn: psycopg.Connection, source, window: Window, now: datetime, wait: timedelta,
                     probe_minutes: int = 2, min_rate_per_minute: float = 2.0) -> bool:
    """Completeness check for the newest window: when the source usually holds several events a minute but
    has none in the window's last minutes, ingestion is behind; judge the window on a later run (at most
    ``wait`` after its end, so a real silence is never postponed for long)."""
    if now - window.end >= wait:
        return False
    step = window.end - window.start
    row = conn.execute("SELECT events_read FROM windows WHERE window_start = %s", (window.start - step,)).fetchone()
    if row is None or row[0] / (step.total_seconds() / 60) < min_rate_per_minute:
        return False
    probe = Window(window.end - timedelta(minutes=probe_minutes), window.end)
    stats = SourceStats()
    for _ in source.read_window(probe, stats):
        return False
    return True


def late_summary_key(missed: list[dict]) -> str:
    """One summary per set of missed peaks: a re-run with the same peaks produces the same key."""
    raw = "|".join(sorted(m["peak_id"] for m in missed))
    return "late_summary:" + hashlib.sha1(raw.encode()).hexdigest()[:16]


def missed_entry(peak, window: Window, late_minutes: int) -> dict:
    return {"peak_id": peak.peak_id, "problem_id": peak.problem_id, "app": peak.app, "kind": peak.kind,
            "count": peak.count, "ratio": peak.ratio, "window": f"{iso_z(window.start)}/{iso_z(window.end)}",
            "late_minutes": late_minutes, "members": len(peak.members)}


def recheck_and_latest(conn: psycopg.Connection, settings, source, due: list[Window], latest: list[Window],
                       now: datetime, summary: dict) -> tuple[list[Window], list[Window]]:
    """The look-back windows to re-read before the due ones, and the latest window unless it looks
    incomplete (then the next run judges it; the summary and metrics say so)."""
    recheck = lookback_windows(conn, due, settings.analysis.lookback_windows)
    summary["windows_rechecked"] = len(recheck)
    summary["windows_delayed"] = 0
    wait = timedelta(minutes=settings.analysis.incomplete_wait_minutes)
    if latest and looks_incomplete(conn, source, latest[-1], now, wait):
        summary["windows_delayed"] = 1
        summary.setdefault("warnings", []).append(
            f"window {latest[-1].label} looks incomplete (no events in its last minutes yet): judged by a later run")
        latest = []
    return recheck, latest


def queue_missed(db, settings, outcomes: list) -> bool:
    """One late-summary message for the run's critical peaks that were too late to alert alone."""
    from tasks.detection.notices import queue_late_summary

    return queue_late_summary(db, settings, [m for o in outcomes for m in getattr(o, "missed", [])])
