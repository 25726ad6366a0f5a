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
