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
