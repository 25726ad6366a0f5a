"""Analyse one window: the single code path shared by backfill, the regular phase and re-runs.

read (source) → group → count → [one transaction: lock window → save templates → replace counts →
detect → refresh registries → queue alerts → advance watermark] → commit (or roll back in a dry run).

Reading and grouping happen before the transaction opens, so a slow Elasticsearch never holds locks. In a run
of many windows they happen in a second process, a window or so ahead (tasks.read_ahead).
"""

from __future__ import annotations

import gc
import logging
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from typing import TYPE_CHECKING

import psycopg

from blocks.settings import Settings
from core.db import Database
from tasks.counting import WindowCounts, count_events
from tasks.models import SourceStats, Window, iso_z
from tasks.stage_times import StageTimes
from tasks.store import advance_watermark, lock_window, replace_window_counts

if TYPE_CHECKING:  # the grouping engine is imported when a window is analysed, not when a command starts
    from tasks.grouping.store import PendingTemplates, TemplateRows
    from tasks.read_ahead import ReadAhead

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
    missed: list = field(default_factory=list)  # critical peaks too late to alert alone (the late summary)


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
    now: datetime | None = None  # the run's logical time: how late a catch-up window is judged
    times: StageTimes = field(default_factory=StageTimes)  # seconds per stage, summed over the run's windows
    history: object = None  # tasks.detection.history_cache.HistoryCache: detection history carried across windows
    read_ahead: object = None  # tasks.read_ahead.ReadAhead: counts planned windows in a second process
    engine_stale: bool = False  # the second process grouped windows since ``engine`` was loaded
    _conn: psycopg.Connection | None = field(default=None, repr=False)  # the run's connection (`transaction`)

    def start_reading(self) -> None:
        """Start the read-ahead processes ahead of the first plan (they read nothing before it)."""
        if self.read_ahead is not None:
            self.read_ahead.start()

    def plan(self, windows: list[Window]) -> None:
        """The windows about to be analysed, in order (the read-ahead process starts on them)."""
        if self.read_ahead is not None:
            self.read_ahead.plan(windows)

    def stop_reading(self) -> None:
        """No more windows will be planned: the read-ahead processes end while this one writes the reports."""
        if self.read_ahead is not None:
            self.read_ahead.release()

    def counted(self, window: Window) -> CountedWindow:
        """The window read, grouped and counted: by the read-ahead process when it has it, else here."""
        if self.read_ahead is not None:
            counted = self.read_ahead.take(window, self.times)
            if counted is not None:
                self.engine_stale = True
                return counted
        if self.engine_stale:  # it learned templates this engine does not know: start from the stored ones
            self.engine = load_grouping_engine(self.settings, self.db)
            self.engine_stale = False
        return count_window(self.source, self.engine, window, self.times)

    def rolled_back(self, counted: CountedWindow) -> None:
        """The window's transaction failed: what its grouping learned is not stored, so the retry must learn it
        again — given back to this process's engine, or the read-ahead process restarts from the stored state."""
        from tasks.grouping.store import restore_pending

        if counted.pending is not None:
            restore_pending(self.engine, counted.pending)
        elif self.read_ahead is not None:
            self.read_ahead.stop()

    @contextmanager
    def transaction(self) -> Iterator[psycopg.Connection]:
        """One transaction per window, on a connection kept for the run: a new connection per window cost the
        server a backend start and cold caches, and re-planned every statement (about a tenth of a window's
        database time). A window that fails drops the connection, so its retry starts on a new one.

        A dry run reads a REPEATABLE READ snapshot and rolls each window back at once, so the row locks its
        simulated writes take last one window's write phase, never the whole run: a live run is never left
        waiting behind a dry run (at the cost that a dry window does not see the simulated writes of the dry
        windows before it)."""
        conn = self._connection()
        try:
            yield conn
            if self.dry_run:
                conn.rollback()  # a dry run writes nothing
            else:
                conn.commit()
        except BaseException:
            try:
                conn.rollback()
            except Exception:  # noqa: S110 - the connection is lost: the next window opens a new one
                pass
            self._drop_connection()
            raise

    def _connection(self) -> psycopg.Connection:
        """The run's connection, checked first: one the server dropped since the last window (a restart, an idle
        timeout) is replaced here instead of failing the window and waiting for its retry."""
        if self._conn is not None:
            try:
                self._conn.execute("SELECT 1")
            except psycopg.OperationalError:
                self._drop_connection()
        if self._conn is None:
            self._conn = self.db.open()
            if self.dry_run:
                self._conn.isolation_level = psycopg.IsolationLevel.REPEATABLE_READ
        return self._conn

    def _drop_connection(self) -> None:
        conn, self._conn = self._conn, None
        if conn is not None:
            conn.close()

    def close(self) -> None:
        """The run's connection, the read-ahead process and the source's files (the flows' `finally`)."""
        self._drop_connection()
        if self.read_ahead is not None:
            self.read_ahead.stop()
        getattr(self.source, "close", lambda: None)()  # open input files, temporary copies


@dataclass
class CountedWindow:
    """A window read, grouped and counted: what its transaction stores."""

    counts: WindowCounts
    stats: SourceStats
    templates: TemplateRows  # what grouping learned in this window, as the rows to store
    pending: PendingTemplates | None = None  # counted in this process: given back to its engine on a rollback


def prepare_context(settings: Settings, db: Database, source: object, run_id: str, *, dry_run: bool,
                    read_ahead: bool = False, input_paths: list[str] | None = None,
                    started: ReadAhead | None = None) -> AnalysisContext:
    """``read_ahead``: ``source`` is ``open_source(settings, input_paths)``, so a second process can open it too.
    ``started``: read-ahead processes started before the database was open (`start_read_ahead`), used when the
    settings allow read-ahead and stopped otherwise."""
    from tasks.detection import load_detection_rules
    from tasks.detection.history_cache import HistoryCache
    from tasks.scrubbing import scrubbed

    tune_gc()
    ctx = AnalysisContext(settings=settings, db=db, source=scrubbed(source, settings), run_id=run_id, dry_run=dry_run)
    ctx.rules = load_detection_rules(settings.analysis.detection_rules)
    ctx.history = None if dry_run else HistoryCache()  # a dry run's windows roll back: nothing to carry
    if read_ahead and settings.analysis.read_ahead:
        from tasks.read_ahead import ReadAhead, recipe_for

        ctx.read_ahead = started or ReadAhead()
        ctx.read_ahead.prepare(recipe_for(settings, db, input_paths))
        ctx.engine_stale = True  # the grouping process loads its own; this one only when it counts a window itself
    else:
        if started is not None:
            started.stop()
        ctx.engine = load_grouping_engine(settings, db)
    return ctx


def start_read_ahead() -> ReadAhead | None:
    """Read-ahead processes started at once, before the database is open (`ReadAhead.start`): their imports run
    while the database is reached and migrated — a local run's embedded server is created then, about 0.8 s
    before the first window could be read. None where they would not run (fewer than `MIN_CPUS`)."""
    from tasks.read_ahead import ReadAhead

    read_ahead = ReadAhead()
    read_ahead.start()
    return read_ahead if read_ahead.started else None


def tune_gc() -> None:
    """A run allocates millions of short-lived objects next to large long-lived caches (grouping, scrubbing,
    history): with the default thresholds the collector runs thousands of times and rescans the caches (about
    4 % of a 100k-event backfill); less often is enough, nothing here relies on prompt cycle collection.
    The first threshold is above what one page of documents holds alive (5,000 documents are about 30,000
    dicts): at 50,000 nearly every young collection scanned a live page, 2-3 CPU-s of each process in a
    1M-event backfill (bench/README.md, "eleventh step"). It counts objects allocated and not yet freed, so
    garbage freed by reference counting never adds up to it; only cycles wait longer."""
    gc.set_threshold(1_000_000, 20, 100)


def load_grouping_engine(settings: Settings, db: Database):
    """The grouping engine with every stored template and the user's fingerprint rules."""
    from tasks.grouping import load_engine, load_fingerprint_rules

    rules = load_fingerprint_rules(settings.analysis.fingerprint_rules) if settings.analysis.fingerprint_rules else None
    with db.connect() as conn:
        return load_engine(conn, rules)


def open_scrubbed_source(settings: Settings, input_paths: tuple[str, ...] | None):
    """The scrubbed source of a read-ahead process, opened as `prepare_context` opens it."""
    from tasks.scrubbing import scrubbed
    from tasks.source import open_source

    tune_gc()
    return scrubbed(open_source(settings, list(input_paths) if input_paths else None), settings)


def count_window(source, engine, window: Window, times: StageTimes) -> CountedWindow:
    """Read, group and count one window; take what grouping learned in it as the rows to store with it."""
    from tasks.grouping.store import take_pending, template_rows

    counts, stats = read_and_count(source, engine, window, times)
    pending = take_pending(engine)
    return CountedWindow(counts, stats, template_rows(engine, pending), pending)


def read_and_count(source, engine, window: Window, times: StageTimes) -> tuple[WindowCounts, SourceStats]:
    """Stream the window's events through the grouping engine into counts (memory bounded by distinct keys)."""
    stats = SourceStats()
    spent = [0.0, 0.0]  # reading, grouping

    def grouped():
        clock, group_event = time.perf_counter, engine.group_event
        events = iter(source.read_window(window, stats))
        while True:
            t0 = clock()
            event = next(events, None)
            t1 = clock()
            spent[0] += t1 - t0
            if event is None:
                return
            result = group_event(event)
            spent[1] += clock() - t1
            if result.error_type and not event.error_type:
                event.error_type = result.error_type
            yield event, result.problem_id, result.template

    started = time.perf_counter()
    counts = count_events(grouped(), window)
    times["read"] += spent[0]
    times["group"] += spent[1]
    times["count"] += time.perf_counter() - started - spent[0] - spent[1]
    return counts, stats


def analyse_window(ctx: AnalysisContext, window: Window, *, mode: str, watermark: str | None = None,
                   judge: bool = True) -> WindowOutcome:
    """Process one window idempotently: re-running it replaces its rows and never alerts twice.

    ``judge=False`` stores the window's counts only (a fanned-out backfill's child); `judge_stored_window`
    then runs detection, registries and alerts on it later, in time order."""
    from tasks.grouping.store import write_template_rows

    counted = ctx.counted(window)
    counts, stats = counted.counts, counted.stats
    started = time.perf_counter()
    times = ctx.times
    try:
        with ctx.transaction() as conn:
            with times.stage("store"):
                lock_window(conn, window)
                write_template_rows(conn, counted.templates)  # what grouping learned, with the window's rows
                dropped = replace_window_counts(conn, counts, stats, ctx.run_id) - counts.problem_ids
            verdict = _judge(ctx, conn, window, counts.problem_ids | dropped, counts.templates, mode,
                             watermark, counts) if judge else None
            commit_started = time.perf_counter()
    except BaseException:
        ctx.rolled_back(counted)  # the retry (messages now cached as known) must still write what it learned
        raise
    times["commit"] += time.perf_counter() - commit_started
    if stats.bad_total:
        log.warning("window %s: %d bad document(s) skipped: %s", window.label, stats.bad_total,
                    dict(stats.bad_documents))
    return _outcome(ctx, window, mode, counts.events, stats.bad_total, len(counts.problem_ids), verdict,
                    time.perf_counter() - started)


def judge_stored_window(ctx: AnalysisContext, window: Window, *, mode: str) -> WindowOutcome:
    """Detection, registries and alerts of a window whose counts are already stored (by a fanned-out child)."""
    from tasks.store.window_counts import stored_problems

    started = time.perf_counter()
    with ctx.transaction() as conn:
        lock_window(conn, window)
        problems = stored_problems(conn, window)
        row = conn.execute("SELECT events_read, bad_documents FROM windows WHERE window_start = %s",
                           (window.start,)).fetchone()
        templates = {p: t for p, t in problems.items() if t is not None}
        verdict = _judge(ctx, conn, window, set(problems), templates, mode, None)
    events, bad = (row[0], sum((row[1] or {}).values())) if row else (0, 0)
    return _outcome(ctx, window, mode, events, bad, len(problems), verdict, time.perf_counter() - started)


def _judge(ctx: AnalysisContext, conn: psycopg.Connection, window: Window, problem_ids: set[str],
           templates: dict[str, str], mode: str, watermark: str | None, counts: WindowCounts | None = None) -> tuple:
    """detect → refresh registries → queue alerts → advance watermark, in the window's transaction. ``counts``:
    the window's counts just stored (detection reads them from memory), or None for a window stored earlier."""
    from tasks.detection import detect_window
    from tasks.detection.live import judge_liveness
    from tasks.detection.notices import queue_recovered
    from tasks.outbox import enqueue_teams
    from tasks.publish.teams import messages
    from tasks.registries.known_errors import refresh_problems

    times = ctx.times
    with times.stage("detect"):
        liveness = judge_liveness(mode, window, ctx.now, timedelta(minutes=ctx.settings.analysis.live_alert_minutes))
        detection = detect_window(conn, window, rules=ctx.rules, mode=mode, liveness=liveness,
                                  history_cache=ctx.history, counts=counts)
    with times.stage("registries"):
        change = refresh_problems(conn, problem_ids, templates, window.end)
        if change.folded and ctx.history is not None:
            ctx.history.forget()  # folding moved stored rows between problem ids: the carried history is stale
    with times.stage("alerts"):
        queued = 0
        for alert in detection.alerts:
            payload = messages.critical_alert(alert.to_dict())
            if enqueue_teams(conn, ctx.settings, alert.idempotency_key, "alert", payload):
                queued += 1
        queued += queue_recovered(conn, ctx.settings, detection.recovered, mode)
        if watermark:
            advance_watermark(conn, watermark, window.end, ctx.run_id)
    return detection, change, queued


def _outcome(ctx: AnalysisContext, window: Window, mode: str, events: int, bad: int, problems: int,
             verdict: tuple | None, elapsed: float) -> WindowOutcome:
    detection, change, queued = verdict if verdict else (None, None, 0)
    peaks = detection.peaks if detection else []
    alerts = len(detection.alerts) if detection else 0
    outcome = WindowOutcome(window=window, events=events, bad_documents=bad, problems=problems,
                            new_problems=change.new if change else 0, peaks=len(peaks), alerts=alerts,
                            alerts_queued=queued, db_write_seconds=elapsed, peak_rows=peaks,
                            missed=detection.missed if detection else [])
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
