"""Counting and the window store: re-running a window replaces its rows, never double-counts."""

from __future__ import annotations

import threading
from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from flows.common import days_to_process
from tasks.analysis import align_down, align_up, windows_between
from tasks.counting import count_events
from tasks.detection.history import load_window
from tasks.models import LogEvent, SourceStats, Window
from tasks.store import advance_watermark, lock_window, read_watermark, replace_window_counts

T0 = datetime(2026, 11, 20, 10, 0, tzinfo=UTC)
W = Window(T0, T0 + timedelta(minutes=15))


def events(n: int, *, app: str = "payments", pod: str = "payments-1") -> list[tuple[LogEvent, str, str]]:
    out = []
    for i in range(n):
        ev = LogEvent(timestamp=T0 + timedelta(seconds=7 * i), message=f"Timeout after {i} ms", app=app, pod=pod,
                      version="1.4.2", error_type="java.net.SocketTimeoutException", trace_id=f"t{i}")
        out.append((ev, "PTIMEOUT", "Timeout after <NUM> ms"))
    return out


def table_counts(conn) -> dict:
    return {t: conn.execute(f"SELECT coalesce(sum(count), 0) FROM {t}").fetchone()[0]  # noqa: S608
            for t in ("window_counts", "window_dimension_rows")}


def test_counts_per_minute_and_dimensions():
    counts = count_events(events(30), W)
    assert counts.events == 30
    assert sum(counts.minute_rows().values()) == 30
    # 7-second spacing: minute 0 holds seconds 0..56 → 9 events
    assert counts.minute_rows()[("PTIMEOUT", "payments", T0)] == 9
    assert counts.dimension_rows()[("PTIMEOUT", "payments", "pod", "payments-1")] == 30
    sample = counts.samples["PTIMEOUT"]
    assert sample.first_ts == T0 and sample.sample_message == "Timeout after 0 ms" and sample.sample_trace_id == "t0"


def test_rerun_replaces_never_double_counts(db):
    stats = SourceStats(events_read=30)
    with db.connect() as conn:
        lock_window(conn, W)
        replace_window_counts(conn, count_events(events(30), W), stats)
        conn.commit()
        first = table_counts(conn)
        lock_window(conn, W)
        replace_window_counts(conn, count_events(events(30), W), stats)
        conn.commit()
        assert table_counts(conn) == first == {"window_counts": 30, "window_dimension_rows": 30 * 2}  # pod, version
        # fewer events upstream on the re-run: rows that vanished are gone too
        replace_window_counts(conn, count_events(events(10, pod="payments-2"), W), SourceStats(events_read=10))
        conn.commit()
        assert conn.execute("SELECT sum(count) FROM window_counts").fetchone()[0] == 10
        assert conn.execute("SELECT count(*) FROM window_dimension_rows WHERE value = 'payments-1'").fetchone()[0] == 0
        assert conn.execute("SELECT events_read FROM windows WHERE window_start = %s", (T0,)).fetchone()[0] == 10


APPS = st.text(st.characters(exclude_categories=("Cs",), exclude_characters="\x00"), min_size=1, max_size=8)


@settings(max_examples=30, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(st.lists(st.tuples(st.integers(-90, 17 * 60), st.sampled_from(["P1", "P2", "P3"]), APPS, st.text(max_size=20),
                          st.none() | st.text(max_size=6)), max_size=50))
@example(rows=[(0, "P1", "pay\tments", "read \x00 failed", "E\x00"), (59, "P1", "x\\y", "later", None)])
def test_detection_reads_a_window_it_just_stored_from_memory_as_from_the_table(db, rows):
    """`detect_window` takes the window's counts from memory instead of reading back the rows it just wrote:
    both must give detection the same window, whatever the apps, messages (NUL included) and event times."""
    stored = [(LogEvent(timestamp=T0 + timedelta(seconds=s), message=message, app=app, error_type=error_type), pid,
               "template") for s, pid, app, message, error_type in rows]
    counts = count_events(stored, W)
    with db.connect() as conn:
        lock_window(conn, W)
        replace_window_counts(conn, counts, SourceStats(events_read=len(stored)))
        assert load_window(conn, W, counts=counts) == load_window(conn, W)
        conn.rollback()


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(st.lists(st.text(st.characters(exclude_categories=("Cs",), exclude_characters="\x00"), max_size=12), max_size=20))
@example(values=['a"b', "c\\d", "NULL", "", "{x,y}", " sp ", "\t\n", "ключ", "a,b"])
def test_a_text_array_parameter_reaches_the_server_as_the_list_it_was(db, values):
    """`array_literal`: the problem ids a window's queries take as one string — any text, quotes, backslashes,
    braces, commas, the word NULL and empty strings included, comes back element for element."""
    from tasks.store.copy_text import array_literal

    with db.connect() as conn:
        assert conn.execute("SELECT %s::text[]", (array_literal(values),)).fetchone()[0] == values


_DIMENSIONS = st.dictionaries(st.sampled_from(["pod", "host", "version", "namespace"]),
                              st.dictionaries(st.text(st.characters(exclude_categories=("Cs",), exclude_characters="\x00"),
                                                      max_size=6), st.integers(1, 10**6), min_size=1, max_size=4),
                              max_size=4)


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(st.lists(_DIMENSIONS, min_size=1, max_size=4))
@example(objects=[{"pod": {"a": 1}}, {"pod": {"a": 2, "b": 1}, "host": {"h": 5}}, {}])
def test_field_values_of_several_rows_add_up_value_by_value(db, objects):
    """Folding aliases into a survivor adds their field values (`sum_dimensions`, `add_dimensions`, migration
    0012): every value's count is the sum over the objects, whatever the values and however many rows fold."""
    from orjson import dumps

    expected: dict[str, dict[str, int]] = {}
    for obj in objects:
        for dim, values in obj.items():
            for value, n in values.items():
                expected.setdefault(dim, {})[value] = expected.get(dim, {}).get(value, 0) + n
    with db.connect() as conn:
        rows = [(dumps(o).decode(),) for o in objects]
        literal = ", ".join(["(%s::jsonb)"] * len(rows))
        assert conn.execute(f"SELECT sum_dimensions(d) FROM (VALUES {literal}) t(d)",  # noqa: S608
                            [r[0] for r in rows]).fetchone()[0] == expected
        assert conn.execute("SELECT add_dimensions(%s::jsonb, NULL), add_dimensions(NULL, NULL)",
                            (rows[0][0],)).fetchone() == (objects[0], {})


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(st.lists(st.one_of(st.none(), st.lists(st.integers(0, 10**6), max_size=15)), min_size=1, max_size=5))
@example(arrays=[[1, 0, 2], [0, 0, 0, 5], None, []])
def test_minute_arrays_of_several_rows_add_up_minute_by_minute(db, arrays):
    """Folding aliases into a survivor adds their minutes (`sum_minutes`, `add_minutes`, migration 0014)
    position by position, whatever their lengths (trailing zeros are cut) and however many rows fold."""
    longest = max((len(a) for a in arrays if a is not None), default=0)
    expected = [sum(a[i] for a in arrays if a is not None and i < len(a)) for i in range(longest)]
    with db.connect() as conn:
        literal = ", ".join(["(%s::integer[])"] * len(arrays))
        got = conn.execute(f"SELECT sum_minutes(m) FROM (VALUES {literal}) t(m)", arrays).fetchone()[0]  # noqa: S608
        assert (got or []) == expected
        assert conn.execute("SELECT add_minutes(%s::integer[], NULL)", (arrays[0],)).fetchone()[0] == (arrays[0] or None)


def test_an_event_outside_its_window_counts_in_its_first_or_last_minute():
    """The source gave it for this window (its range query read the timestamp otherwise): it is counted there,
    in the minute nearest to it, never in a minute of another window — and its time in the problem's sample is
    the window's first or last instant (the registry's first and last seen come from the earliest and latest
    window, migration 0016)."""
    at = [-90, -1, 0, 59, 60, 14 * 60 + 59, 15 * 60, 17 * 60, 3 * 86400]
    grouped = [(LogEvent(timestamp=T0 + timedelta(seconds=s), message="m", app="a"), "P", "t") for s in at]
    counts = count_events(grouped, W)
    assert counts.minute_rows() == {("P", "a", T0): 4, ("P", "a", T0 + timedelta(minutes=1)): 1,
                                    ("P", "a", T0 + timedelta(minutes=14)): 4}
    assert (counts.samples["P"].first_ts, counts.samples["P"].last_ts) == (W.start, W.end - timedelta(microseconds=1))
    assert count_events(grouped[:3], W).minutes == {("P", "a"): [3]}  # up to the last minute with events
    inside = count_events(grouped[2:6], W).samples["P"]
    assert (inside.first_ts, inside.last_ts) == (T0, T0 + timedelta(seconds=14 * 60 + 59))  # inside: as they are
    late = count_events(grouped[-2:], W).samples["P"]
    assert late.first_ts == late.last_ts == W.end - timedelta(microseconds=1)


def test_a_window_reads_back_minute_by_minute_through_the_view(db):
    """What a window stores as one array per (problem, app) is, through the `window_counts` view, exactly the
    counted minutes (position i is minute i of the window); an empty minute is no row."""
    import random

    rng = random.Random(3)
    grouped = []
    for i in range(60):  # three problems in two apps, at random seconds of minutes 0-13 (none in minute 14)
        ev = LogEvent(timestamp=T0 + timedelta(seconds=rng.randrange(14 * 60)), message=f"m{i}",
                      app=rng.choice(["payments", "cards"]), pod=f"pod-{i % 3}")
        pid = rng.choice(["PA", "PB", "PC"])
        grouped.append((ev, pid, pid))
    counted = count_events(sorted(grouped, key=lambda g: g[0].timestamp), W)
    with db.connect() as conn:
        replace_window_counts(conn, counted, SourceStats(events_read=60))
        got = {(p, a, m): n for p, a, m, n in conn.execute(
            "SELECT problem_id, app, minute, count FROM window_counts WHERE window_start = %s", (W.start,))}
    assert got == counted.minute_rows() and len(got) > 5


def test_two_runs_of_one_window_cannot_interleave(db):
    """The second transaction waits for the first one's window lock."""
    order: list[str] = []
    first_locked = threading.Event()

    def first():
        with db.connect() as conn:
            lock_window(conn, W)
            first_locked.set()
            replace_window_counts(conn, count_events(events(5), W), SourceStats(events_read=5))
            threading.Event().wait(0.5)
            order.append("first-commit")
            conn.commit()

    t = threading.Thread(target=first)
    t.start()
    first_locked.wait(10)
    with db.connect() as conn:
        lock_window(conn, W)
        order.append("second-locked")
        replace_window_counts(conn, count_events(events(8), W), SourceStats(events_read=8))
        conn.commit()
    t.join()
    assert order == ["first-commit", "second-locked"]
    with db.connect() as conn:
        assert conn.execute("SELECT sum(count) FROM window_counts").fetchone()[0] == 8


def test_watermark_only_moves_forward(db):
    with db.connect() as conn:
        assert read_watermark(conn, "regular") is None
        advance_watermark(conn, "regular", T0)
        advance_watermark(conn, "regular", T0 - timedelta(hours=1))  # a re-run of an old window
        conn.commit()
        assert read_watermark(conn, "regular") == T0


def test_window_alignment():
    t = datetime(2026, 11, 20, 10, 7, 30, tzinfo=UTC)
    assert align_down(t) == datetime(2026, 11, 20, 10, 0, tzinfo=UTC)
    assert align_up(t) == datetime(2026, 11, 20, 10, 15, tzinfo=UTC)
    ws = windows_between(t, datetime(2026, 11, 20, 11, 0, tzinfo=UTC))
    assert [w.start.minute for w in ws] == [15, 30, 45]
    assert len(windows_between(T0, T0 + timedelta(days=1))) == 96


def test_days_to_process():
    from datetime import date

    from core.errors import ConfigError

    today = date(2026, 11, 28)
    assert days_to_process(None, None, None, today) == [date(2026, 11, 27)]
    assert days_to_process(2, None, None, today) == [date(2026, 11, 26), date(2026, 11, 27)]
    assert len(days_to_process(None, date(2026, 11, 1), date(2026, 11, 3), today)) == 3
    with pytest.raises(ConfigError, match="whole past day"):
        days_to_process(None, date(2026, 11, 27), date(2026, 11, 28), today)
    with pytest.raises(ConfigError, match="before"):
        days_to_process(None, date(2026, 11, 3), date(2026, 11, 1), today)
