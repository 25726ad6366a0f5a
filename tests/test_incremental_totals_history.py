"""The per-window costs made incremental (#13) give exactly what recomputing from scratch gives.

- Registry totals (migration 0011: per-problem running totals kept by triggers) against values computed here
  from the events written, after re-runs that change a window, a fold of an alias and retention.
- The detection history carried across a run's windows (`HistoryCache`) against `load_history` for every
  window of a three-day backfill with a re-run and a fold in the middle, and the stored rows of a second
  backfill of the same days (cache and totals already filled) against the first.
"""

from __future__ import annotations

import random
from collections import defaultdict
from datetime import UTC, date, datetime, timedelta

import pytest

from tasks.counting import count_events
from tasks.models import LogEvent, SourceStats, Window
from tasks.registries.known_errors import _PROBLEM_STATE, refresh_problems
from tasks.registries.retention import prune
from tasks.store import replace_window_counts

DAY0 = datetime(2026, 11, 10, tzinfo=UTC)
STEP = timedelta(minutes=15)
APPS = ("payments", "accounts", "cards")
PODS = ("pod-1", "pod-2", "pod-3")


def _events(rng: random.Random, t: datetime, problems: list[str]) -> list[tuple[LogEvent, str, str]]:
    out = []
    for pid in problems:
        for _ in range(rng.randint(1, 5)):
            ts = t + timedelta(seconds=rng.randint(0, 899))
            out.append((LogEvent(timestamp=ts, message=f"{pid} failed at {ts:%d %H:%M:%S}", app=rng.choice(APPS),
                                 pod=rng.choice(PODS)),
                        pid, f"{pid} failed"))
    return out


def _store(conn, t: datetime, grouped) -> None:
    """Store a window and refresh every problem (a re-run may drop one from the window)."""
    counts = count_events(grouped, Window(t, t + STEP))
    replace_window_counts(conn, counts, SourceStats(events_read=counts.events))
    refresh_problems(conn, counts.problem_ids | {"PA", "PB", "PC", "PD"}, counts.templates, t + STEP)


def _check(conn, written: dict[datetime, list], *, pruned: dict[str, int] | None = None) -> None:
    """Registry rows and running totals equal what the events written (window by window) say."""
    expected: dict[str, dict] = {}
    for grouped in written.values():
        for event, pid, _ in grouped:
            e = expected.setdefault(pid, {"n": 0, "apps": set(), "first": event.timestamp, "last": event.timestamp})
            e["n"] += 1
            e["apps"].add(event.app)
            e["first"], e["last"] = min(e["first"], event.timestamp), max(e["last"], event.timestamp)
    rows = {r[0]: r[1:] for r in conn.execute(
        "SELECT problem_id, count_total - count_pruned, apps, last_seen FROM problems")}
    for pid, e in expected.items():
        assert rows[pid] == (e["n"], sorted(e["apps"]), e["last"]), pid
    assert {pid for pid, r in rows.items() if r[0]} == set(expected)
    totals = {r[0]: r[1:] for r in conn.execute("SELECT problem_id, events, windows FROM problem_totals WHERE windows <> 0")}
    assert totals == {r[0]: r[1:] for r in conn.execute(
        "SELECT problem_id, sum(count), count(*) FROM window_problem_samples GROUP BY problem_id")}
    assert {pid: t[0] for pid, t in totals.items()} == {pid: e["n"] for pid, e in expected.items()}
    apps = {tuple(r) for r in conn.execute("SELECT problem_id, app, windows FROM problem_app_windows WHERE windows <> 0")}
    assert apps == {tuple(r) for r in conn.execute(
        "SELECT problem_id, a, count(*) FROM window_problem_samples, unnest(apps) a GROUP BY 1, 2")}
    # first and last occurrence, latest window and the one before it (migration 0013) as a scan of the rows says
    assert {r[0]: r[1:] for r in conn.execute(
        "SELECT problem_id, first_seen, last_seen, latest_window, previous_window FROM problem_totals"
        " WHERE windows <> 0")} == {r[0]: (r[1], r[2], r[3], r[4][1] if len(r[4]) > 1 else None) for r in conn.execute(
            "SELECT problem_id, min(first_ts), max(last_ts), max(window_start),"
            " array_agg(window_start ORDER BY window_start DESC) FROM window_problem_samples GROUP BY 1")}
    # what a refresh reads for the window it refreshes: the latest stored window before it, whether that window
    # is the latest (the usual run), an older one (a re-run) or later than all
    ids = sorted(totals)
    for start in sorted({*written, max(written, default=DAY0) + STEP})[::17]:
        state = {r[0]: (r[1], r[2], r[5]) for r in conn.execute(_PROBLEM_STATE, {"start": start, "ids": ids})}
        assert state == {r[0]: r[1:] for r in conn.execute(
            "SELECT problem_id, min(first_ts), max(last_ts), max(window_start) FILTER (WHERE window_start < %s)"
            " FROM window_problem_samples GROUP BY 1", (start,))}
    # the registry row's sample is its latest window's (joined in the upsert, not sent from here)
    assert {r[0]: r[1:] for r in conn.execute(
        "SELECT problem_id, sample_message, sample_trace_id, error_type FROM problems WHERE count_total > count_pruned")
    } == {r[0]: tuple(r[1:]) for r in conn.execute(
        "SELECT DISTINCT ON (problem_id) problem_id, sample_message, sample_trace_id, error_type"
        " FROM window_problem_samples ORDER BY problem_id, window_start DESC")}
    firsts = dict(conn.execute("SELECT problem_id, min(first_ts) FROM window_problem_samples GROUP BY 1").fetchall())
    assert firsts == {pid: e["first"] for pid, e in expected.items()}
    # the field values behind the counts (migration 0012: one row per window, problem and app) add up the same
    # way: a fold adds the alias's values to the survivor's in the same window and app
    dims: dict[tuple, int] = defaultdict(int)
    for t, grouped in written.items():
        for event, pid, _ in grouped:
            dims[(t, pid, event.app, "pod", event.pod)] += 1
    assert {tuple(r[:5]): r[5] for r in conn.execute(
        "SELECT window_start, problem_id, app, dimension, value, count FROM window_dimension_rows"
        " WHERE window_start = ANY(%s)", (list(written),))} == dims
    if pruned is not None:
        assert dict(conn.execute("SELECT problem_id, count_pruned FROM problems WHERE count_pruned > 0")) == pruned


def test_running_totals_follow_reruns_folds_and_retention(db):
    rng = random.Random(5)
    problems = ["PA", "PB", "PC", "PD"]
    written: dict[datetime, list] = {}
    with db.connect() as conn:
        windows = [DAY0 + i * STEP for i in range(2 * 96)]
        for t in windows:
            written[t] = _events(rng, t, [p for p in problems if rng.random() < 0.7])
            _store(conn, t, written[t])
        _check(conn, written)
        # re-runs that change a window: fewer problems, other apps, the latest window of a problem included
        for t in (windows[5], windows[100], windows[-1], windows[-1]):
            written[t] = _events(rng, t, ["PA"] + [p for p in problems[1:] if rng.random() < 0.3])
            _store(conn, t, written[t])
            _check(conn, written)
        # the grouping engine merged PD into PB: PD's stored rows and count go to PB, never both
        conn.execute("INSERT INTO problem_aliases (alias_id, problem_id) VALUES ('PD', 'PB')")
        t = windows[-1] + STEP
        written[t] = _events(rng, t, ["PA"])
        _store(conn, t, written[t])
        written = {w: [(e, "PB" if pid == "PD" else pid, tpl) for e, pid, tpl in g] for w, g in written.items()}
        _check(conn, written)
        assert conn.execute("SELECT count(*) FROM problems WHERE problem_id = 'PD'").fetchone()[0] == 0
        # retention: the first day's rows go, count_total stays (count_pruned + what is stored)
        prune(conn, DAY0 + timedelta(days=1))
        old = {w: g for w, g in written.items() if w < DAY0 + timedelta(days=1)}
        pruned: dict[str, int] = defaultdict(int)
        for g in old.values():
            for _e, pid, _ in g:
                pruned[pid] += 1
        kept = {w: g for w, g in written.items() if w not in old}
        refresh_problems(conn, problems, {}, t + STEP)
        _check(conn, kept, pruned=dict(pruned))
        # a pruned window backfilled again counts once more in the stored rows, not twice
        written_again = _events(rng, windows[3], ["PA", "PC"])
        _store(conn, windows[3], written_again)
        _check(conn, {**kept, windows[3]: written_again}, pruned=dict(pruned))
        # a window written twice in one transaction (delete + insert by hand) still adds up
        conn.execute("DELETE FROM window_problem_samples WHERE window_start = %s", (windows[150],))
        del kept[windows[150]]
        conn.execute("DELETE FROM window_totals WHERE window_start = %s", (windows[150],))
        refresh_problems(conn, problems, {}, t + STEP)
        _check(conn, {**kept, windows[3]: written_again}, pruned=dict(pruned))


# -- the detection history carried across windows -------------------------------------------------------------------
START = date(2026, 11, 2)


@pytest.fixture(scope="module")
def generated(tmp_path_factory):
    from ailog.simulation import generate

    return generate(START, 4, seed=3, out_dir=tmp_path_factory.mktemp("hist"), apps=10)


def _context(db, files, *, cache: bool):
    from blocks.settings import load_settings
    from tasks.analysis import prepare_context
    from tasks.source.files import FileSource

    settings = load_settings(use_blocks=False)
    ctx = prepare_context(settings, db, FileSource([str(f) for f in files], settings.elasticsearch.fields),
                          "test-run", dry_run=False)
    if not cache:
        ctx.history = None
    return ctx


def _same_history(got, want, pairs) -> None:
    assert got.processed == want.processed and got.first_window == want.first_window
    for pair in pairs:
        assert got.series.get(pair, {}) == want.series.get(pair, {}), pair
        assert got.peak_windows.get(pair, set()) == want.peak_windows.get(pair, set()), pair
    for pid in {p for p, _ in pairs}:
        assert got.seen_before.get(pid) == want.seen_before.get(pid), pid


def _state(db) -> dict:
    with db.connect() as conn:
        q = lambda sql: [tuple(r) for r in conn.execute(sql).fetchall()]  # noqa: E731
        return {
            "counts": q("SELECT window_start, problem_id, app, minute, count FROM window_counts ORDER BY 1, 2, 3, 4"),
            "peaks": q("SELECT peak_id, window_start, problem_id, app, kind, count, baseline, ratio, severity, known,"
                       " alerted, incident_id FROM peaks ORDER BY 1"),
            "problems": q("SELECT problem_id, template, apps, first_seen, last_seen, count_total, count_pruned, status,"
                          " severity, sample_message FROM problems ORDER BY 1"),
            "incidents": q("SELECT incident_id, problem_id, app, opened_at, closed_at FROM incidents ORDER BY 1"),
        }


def test_carried_history_is_the_history_read_from_the_database(db, generated, monkeypatch):
    """Every window of a 4-day backfill: the cache's History equals load_history's (which the window's own
    transaction also sees), including after a re-run of an earlier window and a fold in the middle."""
    from tasks.analysis import analyse_window, windows_between
    from tasks.detection import history_cache
    from tasks.detection.history import load_history

    checked = {"windows": 0, "reloads": 0, "pairs": 0}
    original_load, original_forget = history_cache.HistoryCache.load, history_cache.HistoryCache.forget

    def compared(self, conn, window, pairs):
        got = original_load(self, conn, window, pairs)
        _same_history(got, load_history(conn, window, pairs), pairs)
        checked["windows"] += 1
        checked["pairs"] += len(pairs)
        return got

    def counted_forget(self):
        checked["reloads"] += 1
        original_forget(self)

    monkeypatch.setattr(history_cache.HistoryCache, "load", compared)
    monkeypatch.setattr(history_cache.HistoryCache, "forget", counted_forget)
    ctx = _context(db, generated.files, cache=True)
    windows = windows_between(datetime(2026, 11, 2, tzinfo=UTC), datetime(2026, 11, 6, tzinfo=UTC))
    for i, w in enumerate(windows):
        analyse_window(ctx, w, mode="backfill")
        if i == 250:
            analyse_window(ctx, windows[200], mode="backfill")  # a re-run of an earlier window: not the successor
        if i == 300:
            with db.connect() as conn:  # a merge found by the grouping engine: the next refresh folds it
                pid = conn.execute("SELECT problem_id FROM window_problem_samples WHERE window_start = %s"
                                   " ORDER BY count DESC LIMIT 1", (w.start,)).fetchone()[0]
                other = conn.execute("SELECT problem_id FROM problems WHERE problem_id <> %s ORDER BY count_total"
                                     " DESC LIMIT 1", (pid,)).fetchone()[0]
                conn.execute("INSERT INTO problem_aliases (alias_id, problem_id) VALUES (%s, %s)", (other, pid))
                conn.commit()
    assert checked["windows"] == len(windows) + 1 and checked["pairs"] > 10 * len(windows), checked
    # at least: the first window, the re-run, the window after it (not the re-run's successor), the fold (the
    # engine goes on emitting the alias, so later windows fold again) — yet most windows carry the history
    assert 4 <= checked["reloads"] < len(windows) // 2, checked
    with db.connect() as conn:
        assert conn.execute("SELECT count(*) FROM peaks WHERE kind IN ('spike', 'burst')").fetchone()[0] > 0
        assert conn.execute("SELECT count(*) FROM window_totals WHERE window_start < %s",
                            (windows[-1].start - timedelta(days=2),)).fetchone()[0] > 0


def test_a_second_backfill_of_the_same_days_stores_the_same_rows(db, generated, pg_template, tmp_path):
    """Backfilled with the carried history and running totals, then again over filled tables (every window a
    re-run), the rows are the same — and the same as a backfill that reads the history from the database."""
    from tasks.analysis import analyse_window, windows_between
    from tests.conftest import clone_database

    windows = windows_between(datetime(2026, 11, 2, tzinfo=UTC), datetime(2026, 11, 5, tzinfo=UTC))
    ctx = _context(db, generated.files[:3], cache=True)
    for w in windows:
        analyse_window(ctx, w, mode="backfill")
    first = _state(db)
    assert first["peaks"] and sum(r[5] for r in first["problems"]) == sum(r[4] for r in first["counts"])
    ctx = _context(db, generated.files[:3], cache=True)
    for w in windows:
        analyse_window(ctx, w, mode="backfill")
    assert _state(db) == first
    plain = clone_database(pg_template, f"plain_{tmp_path.name[-8:]}")
    ctx = _context(plain, generated.files[:3], cache=False)
    for w in windows:
        analyse_window(ctx, w, mode="backfill")
    assert _state(plain) == first


class _ListSource:
    """Events handed over as they are (what a source yields after decoding)."""

    def __init__(self, events: list[LogEvent]) -> None:
        self.events = events

    def read_window(self, window, stats):
        for event in self.events:
            if window.start <= event.timestamp < window.end:
                stats.events_read += 1
                yield event


def test_a_rerun_that_drops_a_problem_from_a_window_refreshes_its_count(db):
    """Re-run with other data (late corrections, a changed grouping): the problem the window no longer holds
    loses those events in the registry too, so the sum of count_total stays the events stored."""
    from blocks.settings import load_settings
    from tasks.analysis import analyse_window, prepare_context

    w = Window(DAY0, DAY0 + STEP)
    payment = [LogEvent(timestamp=DAY0 + timedelta(seconds=i), message="Payment gateway timeout", app="payments")
               for i in range(7)]
    disk = [LogEvent(timestamp=DAY0 + timedelta(seconds=i), message="Disk quota exceeded", app="cards")
            for i in range(5)]
    settings = load_settings(use_blocks=False)
    for events in (payment + disk, payment):
        ctx = prepare_context(settings, db, _ListSource(events), "test-run", dry_run=False)
        analyse_window(ctx, w, mode="backfill")
    with db.connect() as conn:
        stored = conn.execute("SELECT sum(count) FROM window_counts").fetchone()[0]
        totals = dict(conn.execute("SELECT template, count_total FROM problems").fetchall())
    assert stored == 7 and sum(totals.values()) == 7, totals
    assert sorted(totals.values()) == [0, 7]


def test_seen_columns_are_filled_when_an_older_schema_upgrades(db):
    """Migration 0013 on a database that already holds windows: the columns come out as the triggers keep them."""
    from core.db.migrate import migrate

    rng = random.Random(13)
    with db.connect() as conn:
        for i in range(20):
            _store(conn, DAY0 + i * STEP, _events(rng, DAY0 + i * STEP, [p for p in "PA PB PC".split() if rng.random() < 0.6]))
        conn.commit()
        kept = conn.execute("SELECT * FROM problem_totals ORDER BY problem_id").fetchall()
    with db.connect(ddl=True) as conn:
        conn.execute("SET search_path = ailog")
        conn.execute("ALTER TABLE problem_totals DROP COLUMN first_seen, DROP COLUMN last_seen,"
                     " DROP COLUMN latest_window, DROP COLUMN previous_window")
        conn.execute("DELETE FROM schema_migrations WHERE version = '0013'")
        conn.commit()
    assert migrate(db).applied == ["0013_problem_totals_seen"]
    with db.connect() as conn:
        assert conn.execute("SELECT * FROM problem_totals ORDER BY problem_id").fetchall() == kept
        assert any(row[-1] is not None for row in kept)


def test_sample_times_outside_their_window_are_clamped_when_an_older_schema_upgrades(db):
    """Migration 0016 on a database an older release filled: a sample time outside its window (stored before the
    counting clamped them) is moved to the window's edge, and the problem's first and last seen follow; the
    registry's deletes then find them from the earliest and latest window alone."""
    from core.db.migrate import migrate

    rng = random.Random(16)
    with db.connect() as conn:
        for i in range(6):
            _store(conn, DAY0 + i * STEP, _events(rng, DAY0 + i * STEP, ["PA", "PB"]))
        # what an older release could store: PA's first event before its window, its last after its window
        conn.execute("UPDATE window_problem_samples SET first_ts = window_start - interval '1 hour',"
                     " last_ts = window_start + interval '1 day' WHERE problem_id = 'PA'")
        conn.commit()
        assert conn.execute("SELECT first_seen FROM problem_totals WHERE problem_id = 'PA'").fetchone()[0] == \
            DAY0 - timedelta(hours=1)
    with db.connect(ddl=True) as conn:
        conn.execute("SET search_path = ailog")
        conn.execute("CREATE INDEX window_problem_samples_first ON window_problem_samples (problem_id, first_ts)")
        conn.execute("CREATE INDEX window_problem_samples_last ON window_problem_samples (problem_id, last_ts)")
        conn.execute("DELETE FROM schema_migrations WHERE version = '0016'")
        conn.commit()
    assert migrate(db).applied == ["0016_sample_times_in_window"]
    with db.connect() as conn:
        outside = conn.execute("SELECT count(*) FROM window_problem_samples s JOIN windows w USING (window_start)"
                               " WHERE s.first_ts < s.window_start OR s.last_ts >= w.window_end").fetchone()[0]
        seen = conn.execute("SELECT first_seen, last_seen FROM problem_totals WHERE problem_id = 'PA'").fetchone()
        assert outside == 0
        assert seen == (DAY0, DAY0 + 6 * STEP - timedelta(microseconds=1))
        # a re-run of the last window without PA: its last seen is read again, from the window before
        _store(conn, DAY0 + 5 * STEP, _events(rng, DAY0 + 5 * STEP, ["PB"]))
        assert conn.execute("SELECT last_seen FROM problem_totals WHERE problem_id = 'PA'").fetchone()[0] == \
            DAY0 + 5 * STEP - timedelta(microseconds=1)
        indexes = {r[0] for r in conn.execute("SELECT indexname FROM pg_indexes WHERE tablename = 'window_problem_samples'")}
        assert indexes == {"window_problem_samples_pkey", "window_problem_samples_problem"}
