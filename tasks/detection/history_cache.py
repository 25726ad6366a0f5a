"""The detection history of one run's consecutive windows, carried forward in memory.

`load_history` reads, for every window, two days of totals of every (problem, app) of the window plus the same
time of day on older days: its cost grows with the history, and a backfill pays it 96 times a day. Between two
consecutive windows of one run that history changes by little: the window judged last (whose totals detection
has just read), its peaks, and the older days' windows that slide into or out of the same time of day. This
cache applies exactly that difference and reads from the database only what it does not hold (pairs seen for
the first time, windows sliding in), so a window costs what the window brings, not what the history holds.

It returns the very `History` that `load_history` would (tests compare the two). Whenever it cannot be sure
of that it forgets everything and starts again from the database: the window is not the successor of the one
judged last, a stored window of the range was written by someone else since (its `processed_at` changed, one
appeared or vanished — another process, a retried window, a dry run's rollback), or aliases were folded
(`forget`). The first window of a run therefore reads exactly what `load_history` reads.
"""

from __future__ import annotations

from collections import defaultdict
from datetime import datetime, timedelta

import psycopg

from tasks.detection.history import (
    HISTORY_DAYS,
    History,
    in_series,
    read_peak_windows,
    read_seen_before,
    read_series,
)
from tasks.models import Window

Pair = tuple[str, str]


class HistoryCache:
    """One per run (AnalysisContext); windows must be judged in time order to profit, any order stays correct."""

    def __init__(self) -> None:
        self.forget()

    def forget(self) -> None:
        """Drop everything: the next window reads its history from the database."""
        self.last: Window | None = None  # the window judged last
        self.last_totals: dict[Pair, int] = {}  # its totals per (problem, app), as detection read them
        self.fingerprint: dict[datetime, datetime] = {}  # stored windows the cache reflects -> processed_at
        self.series: dict[Pair, dict[datetime, int]] = {}  # only pairs whose whole needed history is held
        self.loaded: set[datetime] = set()  # windows whose totals are in `series` (for every held pair)
        self.by_window: dict[datetime, set[Pair]] = defaultdict(set)  # window -> held pairs with an entry
        self.peak_windows: dict[Pair, set[datetime]] = defaultdict(set)
        self.seen_before: dict[str, datetime] = {}  # only problems whose value is exact
        self.seen_known: set[str] = set()

    def load(self, conn: psycopg.Connection, window: Window, pairs: list[Pair]) -> History:
        since = window.start - timedelta(days=HISTORY_DAYS)
        stored = conn.execute("SELECT window_start, processed_at FROM windows WHERE window_start >= %s"
                              " AND window_start < %s ORDER BY window_start", (since, window.start)).fetchall()
        first = conn.execute("SELECT min(window_start) FROM windows").fetchone()[0]
        if not self._continues(window, stored, since):
            self.forget()
        elif self.last is not None:
            self._advance(conn, window, [w for w, _ in stored], since)
        self.last = None  # until `remember`: a window judged twice without it starts again from the database
        self.fingerprint = dict(stored)
        self._add_pairs(conn, window, [p for p in pairs if p not in self.series])
        self._add_seen(conn, window, sorted({p for p, _ in pairs} - self.seen_known))
        return History(processed=[w for w, _ in stored], series=self.series, peak_windows=self.peak_windows,
                       seen_before=self.seen_before, first_window=first)

    def remember(self, conn: psycopg.Connection, window: Window, totals: dict[Pair, int]) -> None:
        """After the window was judged: what the next window will need from it (its totals, its stored row)."""
        row = conn.execute("SELECT processed_at FROM windows WHERE window_start = %s", (window.start,)).fetchone()
        if row is None:
            self.forget()
            return
        self.last, self.last_totals = window, dict(totals)
        self.fingerprint[window.start] = row[0]

    def _continues(self, window: Window, stored: list, since: datetime) -> bool:
        """The cache may go on: this window follows the last one and nobody rewrote the range since."""
        if self.last is None:
            return not self.series and not self.seen_known and not self.loaded  # nothing held, nothing stale
        if self.last.end != window.start or self.last.end - self.last.start != window.end - window.start:
            return False
        expected = {w: t for w, t in self.fingerprint.items() if w >= since}
        return dict(stored) == expected

    def _advance(self, conn: psycopg.Connection, window: Window, processed: list[datetime], since: datetime) -> None:
        """Apply the difference between the last window's history and this one's."""
        last = self.last.start
        for pair, n in self.last_totals.items():
            if pair in self.series:
                self.series[pair][last] = n
                self.by_window[last].add(pair)
        self.loaded.add(last)
        for problem_id, app in conn.execute(
                "SELECT problem_id, app FROM peaks WHERE window_start = %s AND kind IN ('spike', 'burst')", (last,)):
            self.peak_windows[(problem_id, app)].add(last)
        for problem_id, _app in self.last_totals:
            self.seen_before[problem_id] = last
            self.seen_known.add(problem_id)
        needed = {w for w in processed if in_series(w, window)}
        for w in self.loaded - needed:
            for pair in self.by_window.pop(w, ()):
                self.series[pair].pop(w, None)
        for pair in [p for p, ws in self.peak_windows.items() if ws and min(ws) < since]:
            self.peak_windows[pair] = {w for w in self.peak_windows[pair] if w >= since}
        sliding_in = sorted(needed - self.loaded)
        self.loaded = needed
        if sliding_in and self.series:
            for problem_id, app, start, n in conn.execute(
                    "SELECT problem_id, app, window_start, count FROM window_totals WHERE window_start = ANY(%s)",
                    (sliding_in,)):
                pair = (problem_id, app)
                if pair in self.series:
                    self.series[pair][start] = n
                    self.by_window[start].add(pair)

    def _add_pairs(self, conn: psycopg.Connection, window: Window, new: list[Pair]) -> None:
        """Pairs seen for the first time in this run: their history as `load_history` reads it."""
        if not self.loaded and not self.series:
            self.loaded = {w for w in self.fingerprint if in_series(w, window)}
        if not new:
            return
        problems, wanted = sorted({p for p, _ in new}), set(new)
        for pair in new:
            self.series[pair] = {}
            self.peak_windows.pop(pair, None)
        for problem_id, app, start, n in read_series(conn, window, problems, sorted({a for _, a in new})):
            pair = (problem_id, app)
            if pair in wanted:
                self.series[pair][start] = n
                self.by_window[start].add(pair)
        for problem_id, app, start in read_peak_windows(conn, window, problems):
            if (problem_id, app) in wanted:
                self.peak_windows[(problem_id, app)].add(start)

    def _add_seen(self, conn: psycopg.Connection, window: Window, problems: list[str]) -> None:
        if problems:
            self.seen_before.update(read_seen_before(conn, window, problems))
            self.seen_known.update(problems)
