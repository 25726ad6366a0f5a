"""Reads the stored history a window's detection needs, in a few set-based queries."""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

import psycopg

from tasks.counting import WindowCounts
from tasks.models import Window
from tasks.store.copy_text import clean

HISTORY_DAYS = 28
RECENT_DAYS = 2


@dataclass
class WindowData:
    """This window's counts per (problem, app), per minute, and what came just before it."""

    totals: dict[tuple[str, str], int] = field(default_factory=dict)
    minutes: dict[tuple[str, str], list[int]] = field(default_factory=dict)  # 15 per-minute counts
    previous_tail: dict[tuple[str, str], list[int]] = field(default_factory=dict)  # last minutes of the window before
    error_types: dict[str, str | None] = field(default_factory=dict)
    samples: dict[str, str] = field(default_factory=dict)
    first_ts: dict[str, datetime] = field(default_factory=dict)


@dataclass
class History:
    processed: list[datetime]  # starts of processed windows in the history range, ascending
    series: dict[tuple[str, str], dict[datetime, int]]  # per (problem, app): window_start -> count (absent = 0)
    peak_windows: dict[tuple[str, str], set[datetime]]  # windows that held a peak: excluded from baselines
    seen_before: dict[str, datetime]  # problem -> last window it appeared in before this one
    first_window: datetime | None  # the first window ever processed (warm-up)


def load_window(conn: psycopg.Connection, window: Window, tail_minutes: int = 4,
                counts: WindowCounts | None = None) -> WindowData:
    """The window's counts and samples, and the last minutes of the window before it. ``counts``: the window's
    counts as this transaction just stored them (`replace_window_counts` writes exactly these rows), taken from
    memory instead of read back (about 8,000 rows and 1 MB of sample text a window in the scale bench's 1M day)."""
    data = WindowData()
    span = int((window.end - window.start).total_seconds() // 60)
    if counts is not None:  # stored as these arrays, up to their last minute with events
        for key, stored in counts.minutes.items():
            data.totals[key] = sum(stored)
            data.minutes[key] = stored + [0] * (span - len(stored))
    else:
        for problem_id, app, minute, n in conn.execute(
                "SELECT problem_id, app, minute, count FROM window_counts WHERE window_start = %s", (window.start,)):
            key = (problem_id, app)
            data.totals[key] = data.totals.get(key, 0) + n
            slots = data.minutes.setdefault(key, [0] * span)
            slots[window.minute_slot(minute)] += n
    tail_start = window.start - timedelta(minutes=tail_minutes)
    for problem_id, app, minute, n in conn.execute(
            # the view's rows of the windows that overlap the tail (a window lasts at most an hour), found by
            # their start (indexed): the view has no index on its minutes
            "SELECT problem_id, app, minute, count FROM window_counts WHERE minute >= %(tail)s AND minute < %(end)s"
            " AND window_start IN (SELECT window_start FROM windows WHERE window_start > %(after)s"
            " AND window_start < %(end)s AND window_end > %(tail)s)",
            {"after": tail_start - timedelta(hours=1), "end": window.start, "tail": tail_start}):
        slots = data.previous_tail.setdefault((problem_id, app), [0] * tail_minutes)
        slots[int((minute - tail_start).total_seconds() // 60)] += n
    samples = conn.execute("SELECT problem_id, error_type, sample_message, first_ts FROM window_problem_samples"
                           " WHERE window_start = %s", (window.start,)) if counts is None else \
        ((problem_id, clean(s.error_type), clean(s.sample_message), s.first_ts)
         for problem_id, s in counts.samples.items())
    for problem_id, error_type, sample, first_ts in samples:
        data.error_types[problem_id] = error_type
        data.samples[problem_id] = sample or ""
        data.first_ts[problem_id] = first_ts
    return data


def load_history(conn: psycopg.Connection, window: Window, pairs: list[tuple[str, str]]) -> History:
    since = window.start - timedelta(days=HISTORY_DAYS)
    processed = [r[0] for r in conn.execute(
        "SELECT window_start FROM windows WHERE window_start >= %s AND window_start < %s ORDER BY window_start",
        (since, window.start))]
    first = conn.execute("SELECT min(window_start) FROM windows").fetchone()[0]
    series: dict[tuple[str, str], dict[datetime, int]] = defaultdict(dict)
    peak_windows: dict[tuple[str, str], set[datetime]] = defaultdict(set)
    seen_before: dict[str, datetime] = {}
    if pairs:
        problems = sorted({p for p, _ in pairs})
        wanted = set(pairs)
        for problem_id, app, start, n in read_series(conn, window, problems, sorted({a for _, a in pairs})):
            if (problem_id, app) in wanted:
                series[(problem_id, app)][start] = n
        for problem_id, app, start in read_peak_windows(conn, window, problems):
            peak_windows[(problem_id, app)].add(start)
        seen_before.update(read_seen_before(conn, window, problems))
    return History(processed=processed, series=series, peak_windows=peak_windows, seen_before=seen_before,
                   first_window=first)


def read_series(conn: psycopg.Connection, window: Window, problems: list[str], apps: list[str]) -> psycopg.Cursor:
    """(problem, app, window_start, count) of the history window: the last two days in full (recent level,
    dispersion), older days only around the same time of day (`same_time_of_day`)."""
    tod = window.start.hour * 60 + window.start.minute
    return conn.execute(
        "SELECT problem_id, app, window_start, count FROM window_totals"
        " WHERE problem_id = ANY(%s) AND app = ANY(%s) AND window_start >= %s AND window_start < %s"
        " AND (window_start >= %s OR (((extract(hour FROM window_start AT TIME ZONE 'UTC') * 60"
        " + extract(minute FROM window_start AT TIME ZONE 'UTC'))::int - %s + 1440) %% 1440) NOT BETWEEN 16 AND 1424)",
        (problems, apps, window.start - timedelta(days=HISTORY_DAYS), window.start,
         window.start - timedelta(days=RECENT_DAYS), tod))


def in_series(start: datetime, window: Window) -> bool:
    """Whether a stored window belongs to this window's series: the same rule as `read_series`'s query."""
    if start >= window.start - timedelta(days=RECENT_DAYS):
        return True
    start, at = start.astimezone(UTC), window.start.astimezone(UTC)
    return not 16 <= ((start.hour * 60 + start.minute) - (at.hour * 60 + at.minute) + 1440) % 1440 <= 1424


def read_peak_windows(conn: psycopg.Connection, window: Window, problems: list[str]) -> psycopg.Cursor:
    """(problem, app, window_start) of the spikes and bursts in the history window: excluded from baselines."""
    return conn.execute(
        "SELECT problem_id, app, window_start FROM peaks WHERE problem_id = ANY(%s) AND window_start >= %s"
        " AND window_start < %s AND kind IN ('spike', 'burst')",
        (problems, window.start - timedelta(days=HISTORY_DAYS), window.start))


def read_seen_before(conn: psycopg.Connection, window: Window, problems: list[str]) -> psycopg.Cursor:
    """(problem, the last window before this one that held it), for the problems seen before."""
    return conn.execute(
        "SELECT problem_id, max(window_start) FROM window_problem_samples WHERE problem_id = ANY(%s)"
        " AND window_start < %s GROUP BY problem_id", (problems, window.start))
