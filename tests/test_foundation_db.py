"""The schema migrates idempotently and the application user has data privileges only."""

import psycopg
import pytest

from core.db.migrate import available_migrations, migrate


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
    with db.connect(ddl=True) as conn:  # back to the 0011 table, as an older release left it
        conn.execute("SET search_path = ailog")
        conn.execute("DROP VIEW window_dimension_rows; DROP TABLE window_dimensions;"
                     " DROP AGGREGATE sum_dimensions(jsonb); DROP FUNCTION add_dimensions(jsonb, jsonb)")
        conn.execute("CREATE TABLE window_dimensions (window_start timestamptz NOT NULL, problem_id text NOT NULL,"
                     " app text NOT NULL, dimension text NOT NULL, value text NOT NULL, count integer NOT NULL,"
                     " PRIMARY KEY (window_start, problem_id, app, dimension, value))")
        conn.execute("DELETE FROM schema_migrations WHERE version = '0012'")
        old = [("2026-11-20 10:00+00", "P1", "payments", "pod", "payments-1", 30),
               ("2026-11-20 10:00+00", "P1", "payments", "pod", 'a "quoted"\\ pod', 2),
               ("2026-11-20 10:00+00", "P1", "payments", "version", "1.4.2", 32),
               ("2026-11-20 10:00+00", "P1", "payments", "error_type", "java.io.IOException", 32),
               ("2026-11-20 10:00+00", "P1", "cards", "host", "node-1", 1),
               ("2026-11-20 10:15+00", "P1", "payments", "pod", "payments-1", 4)]
        with conn.cursor() as cur:
            cur.executemany("INSERT INTO window_dimensions VALUES (%s, %s, %s, %s, %s, %s)", old)
        conn.commit()
    assert migrate(db).applied == ["0012_window_dimensions_per_app"]
    with db.connect() as conn:
        rows = conn.execute("SELECT window_start, problem_id, app, dimension, value, count FROM window_dimension_rows"
                            " ORDER BY 1, 2, 3, 4, 5").fetchall()
        assert conn.execute("SELECT count(*) FROM window_dimensions").fetchone()[0] == 3
    assert [(w.isoformat(), *rest) for w, *rest in rows] == sorted(
        (w.replace(" ", "T").replace("+00", ":00+00:00"), p, a, d, v, n) for w, p, a, d, v, n in old)
