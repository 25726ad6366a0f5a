"""The schema migrates idempotently and the application user has data privileges only."""

import psycopg
import pytest

from core.db.migrate import available_migrations, migrate
from tests.conftest import rewind_schema


def test_migrate_twice_changes_nothing(db):
    result = migrate(db)
    assert result.applied == []
    assert result.current == available_migrations()[-1].version
    assert "nothing changed" in result.describe()


def test_app_user_reads_and_writes_but_cannot_alter_schema(db):
    with db.connect() as conn:
        assert conn.execute("SELECT current_user").fetchone()[0] == "ailog"
        conn.execute("INSERT INTO watermarks (name, value) VALUES ('t', now())")
        assert conn.execute("SELECT count(*) FROM watermarks").fetchone()[0] == 1
        conn.execute("DELETE FROM watermarks")
        conn.commit()
        for ddl in ("CREATE TABLE ailog.evil (a int)", "DROP TABLE problems", "ALTER TABLE problems ADD COLUMN x int"):
            with pytest.raises(psycopg.errors.InsufficientPrivilege):
                conn.execute(ddl)
            conn.rollback()


def test_times_come_back_in_utc_whatever_the_servers_time_zone(db):
    """A database whose default time zone is local must not hand the tool local times: a stored window's time
    of day picks the windows of its seasonal baseline (23:45 UTC is 05:15 the next day in Kolkata)."""
    from datetime import UTC, datetime, timedelta

    from tasks.detection.baseline import slot_frame

    with db.connect(ddl=True, autocommit=True) as conn:
        conn.execute(f"ALTER DATABASE \"{conn.info.dbname}\" SET timezone TO 'Asia/Kolkata'")
        assert conn.execute("SELECT current_setting('timezone')").fetchone()[0] == "UTC"  # this session's own
    with db.connect() as conn:
        stored = datetime(2026, 11, 20, 23, 45, tzinfo=UTC)
        back = conn.execute("SELECT %s::timestamptz", (stored,)).fetchone()[0]
    assert back == stored and back.tzinfo is UTC and back.hour == 23
    assert slot_frame(stored + timedelta(days=1), [back]).same_slot == [back]
    with psycopg.connect(**{**db.conninfo(), "options": "-c search_path=ailog"}) as plain:  # the database's default
        assert plain.execute("SELECT %s::timestamptz", (stored,)).fetchone()[0].hour == 5


def test_dimension_rows_of_an_older_schema_are_kept_when_it_upgrades(db):
    """Migration 0012 turns one row per field value into one object per (window, problem, app): a database
    written by 0011 comes out with every value and count it held, error_type rows included."""
    rewind_schema(db, "0011")
    with db.connect() as conn:  # one row per value, as releases up to 0011 wrote them
        old = [("2026-11-20 10:00+00", "P1", "payments", "pod", "payments-1", 30),
               ("2026-11-20 10:00+00", "P1", "payments", "pod", 'a "quoted"\\ pod', 2),
               ("2026-11-20 10:00+00", "P1", "payments", "version", "1.4.2", 32),
               ("2026-11-20 10:00+00", "P1", "payments", "error_type", "java.io.IOException", 32),
               ("2026-11-20 10:00+00", "P1", "cards", "host", "node-1", 1),
               ("2026-11-20 10:15+00", "P1", "payments", "pod", "payments-1", 4)]
        with conn.cursor() as cur:
            cur.executemany("INSERT INTO window_dimensions VALUES (%s, %s, %s, %s, %s, %s)", old)
        conn.commit()
    assert migrate(db).applied[:1] == ["0012_window_dimensions_per_app"]
    with db.connect() as conn:
        rows = conn.execute("SELECT window_start, problem_id, app, dimension, value, count FROM window_dimension_rows"
                            " ORDER BY 1, 2, 3, 4, 5").fetchall()
        assert conn.execute("SELECT count(*) FROM window_dimensions").fetchone()[0] == 3
    assert [(w.isoformat(), *rest) for w, *rest in rows] == sorted(
        (w.replace(" ", "T").replace("+00", ":00+00:00"), p, a, d, v, n) for w, p, a, d, v, n in old)


def test_minute_rows_of_an_older_schema_are_kept_when_it_upgrades(db):
    """Migration 0014 turns the minute rows of each (window, problem, app) into one array and moves its field
    values next to it: a database written by 0013 reads back, through the views, every minute row and value
    object it held (one without its total too), and its totals are unchanged."""
    import random
    from datetime import UTC, datetime, timedelta

    from orjson import dumps

    rewind_schema(db, "0013")
    rng = random.Random(14)
    starts = [datetime(2026, 11, 20, 10, tzinfo=UTC) + timedelta(minutes=15 * i) for i in range(3)]
    minutes, dims = [], {}
    for w in starts:
        for p in ("P1", 'P2 "q"'):
            for a in ("payments", "cards"):
                if rng.random() < 0.25:
                    continue
                for i in sorted(rng.sample(range(15), rng.randint(1, 5))):
                    minutes.append((w, w + timedelta(minutes=i), p, a, rng.randint(1, 40)))
                if rng.random() < 0.7:
                    dims[(w, p, a)] = {"pod": {f"{a}-{rng.randint(1, 3)}": rng.randint(1, 9)}, "version": {"1.4.2": 1}}
    # minutes an older release stored outside their window: they go to its first or last minute
    outside = [(starts[1], starts[1] - timedelta(minutes=2), "P1", "edge", 4),
               (starts[1], starts[1] + timedelta(minutes=17), "P1", "edge", 6),
               (starts[1], starts[1] + timedelta(minutes=14), "P1", "edge", 1)]
    minutes += outside
    totals: dict = {}
    for w, _, p, a, n in minutes:
        totals[(w, p, a)] = totals.get((w, p, a), 0) + n
    dims[(starts[2], "P9", "orphan")] = {"host": {"node-1": 3}}  # field values whose total went missing
    expected = {}
    for w, m, p, a, n in minutes:
        m = min(max(m, w), w + timedelta(minutes=14))
        expected[(w, m, p, a)] = expected.get((w, m, p, a), 0) + n
    with db.connect() as conn:  # as releases up to 0013 wrote them
        with conn.cursor() as cur:
            cur.executemany("INSERT INTO window_counts (window_start, minute, problem_id, app, count)"
                            " VALUES (%s, %s, %s, %s, %s)", minutes)
            cur.executemany("INSERT INTO window_totals (window_start, problem_id, app, count) VALUES (%s, %s, %s, %s)",
                            [(*k, n) for k, n in totals.items()])
            cur.executemany("INSERT INTO window_dimensions (window_start, problem_id, app, dimensions)"
                            " VALUES (%s, %s, %s, %s::jsonb)", [(*k, dumps(v).decode()) for k, v in dims.items()])
        conn.commit()
    assert migrate(db).applied[:1] == ["0014_window_rows_per_app"]
    with db.connect() as conn:
        assert {tuple(r[:4]): r[4] for r in conn.execute(
            "SELECT window_start, minute, problem_id, app, count FROM window_counts")} == expected
        assert expected[(starts[1], starts[1], "P1", "edge")] == 4 and len(expected) < len(minutes)
        assert {tuple(r[:3]): r[3] for r in conn.execute(
            "SELECT window_start, problem_id, app, dimensions FROM window_dimensions")} == dims
        assert {tuple(r[:3]): r[3] for r in conn.execute(
            "SELECT window_start, problem_id, app, count FROM window_totals")} == {**totals, (starts[2], "P9", "orphan"): 0}
        arrays = conn.execute("SELECT minutes FROM window_totals WHERE minutes IS NOT NULL").fetchall()
        assert len(arrays) == len(totals) and all(a[-1] > 0 for (a,) in arrays)  # trailing zeros cut
