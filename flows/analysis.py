"""Analyse one window: the single code path shared by backfill, the regular phase and re-runs.

read (source) → group → count → [one transaction: lock window → save templates → replace counts →
detect → refresh registries → queue alerts → advance watermark] → commit (or roll back in a dry run).

Reading and grouping happen before the transaction opens, so a slow Elasticsearch never holds locks.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta

import psycopg

from ailog.db import Database
from blocks.settings import Settings
from tasks.counting import WindowCounts, count_events
from tasks.models import SourceStats, Window, iso_z
from tasks.store import advance_watermark, lock_window, replace_window_counts

log = logging.getLogger("ailog.analysis")


@dataclass
class WindowOutcome:
    window: Window
    events: int
    bad_documents: int
    problems: int
    new_problems: int
    peaks: int
    alerts: int
    alerts_queued: int
    db_write_seconds: float
    peak_rows: list = field(default_factory=list)


@dataclass
class AnalysisContext:
    """What stays the same across the windows of one run: settings, database, source, grouping engine, rules."""

    settings: Settings
    db: Database
    source: object  # tasks.source LogSource
    run_id: str
    dry_run: bool = False
    engine: object = None
    rules: object = None

    @contextmanager
    def transaction(self) -> Iterator[psycopg.Connection]:
        """One transaction per window. A dry run reads a REPEATABLE READ snapshot and rolls each window back at
        once, so the row locks its simulated writes take last one window's write phase, never the whole run:
        a live run is never left waiting behind a dry run (at the cost that a dry window does not see the
        simulated writes of the dry windows before it)."""
        if self.dry_run:
            with self.db.connect() as conn:
                conn.isolation_level = psycopg.IsolationLevel.REPEATABLE_READ
                try:
                    yield conn
                finally:
                    conn.rollback()  # a dry run writes nothing
            return
        with self.db.connect() as conn:
            try:
                yield conn
                conn.commit()
            except BaseException:
                conn.rollback()
                raise

    def close(self) -> None:
        """Nothing stays open between windows (kept for the flows' `finally`)."""


def prepare_context(settings: Settings, db: Database, source: object, run_id: str, *, dry_run: bool) -> AnalysisContext:
    from tasks.detection import load_detection_rules
    from tasks.grouping import load_engine, load_fingerprint_rules
    from tasks.scrubbing import scrubbed

    ctx = AnalysisContext(settings=settings, db=db, source=scrubbed(source, settings), run_id=run_id, dry_run=dry_run)
    rules = load_fingerprint_rules(settings.analysis.fingerprint_rules) if settings.analysis.fingerprint_rules else None
    with db.connect() as conn:
        ctx.engine = load_engine(conn, rules)
    ctx.rules = load_detection_rules(settings.analysis.detection_rules)
    return ctx


def read_and_count(ctx: AnalysisContext, window: Window) -> tuple[WindowCounts, SourceStats]:
    """Stream the window's events through the grouping engine into counts (memory bounded by distinct keys)."""
    stats = SourceStats()

    def grouped():
        for event in ctx.source.read_window(window, stats):
            result = ctx.engine.group_event(event)
            if result.error_type and not event.error_type:
                event.error_type = result.error_type
            yield event, result.problem_id, result.template

    counts = count_events(grouped(), window)
    return counts, stats


def analyse_window(ctx: AnalysisContext, window: Window, *, mode: str, watermark: str | None = None) -> WindowOutcome:
    """Process one window idempotently: re-running it replaces its rows and never alerts twice."""
    from tasks.detection import detect_window
    from tasks.grouping import save_engine
    from tasks.outbox import enqueue_teams
    from tasks.publish.teams import messages
    from tasks.registries.known_errors import refresh_problems

    counts, stats = read_and_count(ctx, window)
    started = time.perf_counter()
    with ctx.transaction() as conn:
        lock_window(conn, window)
        save_engine(conn, ctx.engine)
        replace_window_counts(conn, counts, stats, ctx.run_id)
        detection = detect_window(conn, window, rules=ctx.rules, mode=mode)
        change = refresh_problems(conn, counts.problem_ids, counts.templates, window.end)
        queued = 0
        for alert in detection.alerts:
            payload = messages.critical_alert(alert.to_dict())
            if enqueue_teams(conn, ctx.settings, alert.idempotency_key, "alert", payload):
                queued += 1
        if watermark:
            advance_watermark(conn, watermark, window.end, ctx.run_id)
    elapsed = time.perf_counter() - started
    outcome = WindowOutcome(window=window, events=counts.events, bad_documents=stats.bad_total,
                            problems=len(counts.problem_ids), new_problems=change.new, peaks=len(detection.peaks),
                            alerts=len(detection.alerts), alerts_queued=queued, db_write_seconds=elapsed,
                            peak_rows=detection.peaks)
    if stats.bad_total:
        log.warning("window %s: %d bad document(s) skipped: %s", window.label, stats.bad_total,
                    dict(stats.bad_documents))
    log.info("window %s (%s): %d events, %d problems (%d new), %d peaks, %d alert(s)%s", window.label, mode,
             outcome.events, outcome.problems, outcome.new_problems, outcome.peaks, outcome.alerts,
             " [dry run: nothing written]" if ctx.dry_run else "")
    return outcome


def windows_between(start: datetime, end: datetime, minutes: int = 15) -> list[Window]:
    """Every aligned window that starts at or after ``start`` and ends at or before ``end``."""
    step = timedelta(minutes=minutes)
    first = align_up(start, minutes)
    out = []
    cursor = first
    while cursor + step <= end:
        out.append(Window(cursor, cursor + step))
        cursor += step
    return out


def align_down(t: datetime, minutes: int = 15) -> datetime:
    t = t.astimezone(UTC).replace(second=0, microsecond=0)
    return t - timedelta(minutes=t.minute % minutes)


def align_up(t: datetime, minutes: int = 15) -> datetime:
    down = align_down(t, minutes)
    return down if down == t.astimezone(UTC) else down + timedelta(minutes=minutes)


def day_window(day: date) -> Window:
    start = datetime(day.year, day.month, day.day, tzinfo=UTC)
    return Window(start, start + timedelta(days=1))


def describe_windows(windows: list[Window]) -> str:
    if not windows:
        return "no windows"
    return f"{len(windows)} window(s) {iso_z(windows[0].start)} → {iso_z(windows[-1].end)}"
