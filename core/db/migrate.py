"""Versioned SQL migrations, applied idempotently by the DDL user (SET ROLE to DB_DDL_ROLE when given).

The application user gets data privileges only (SELECT/INSERT/UPDATE/DELETE and sequences) on the
``ailog`` schema: it can neither create nor drop tables.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from importlib import resources

import psycopg
from psycopg import sql

from core.db.connection import SCHEMA, Database
from core.errors import AilogError, ConfigError

LOCK_KEY = 0x41494C4F  # advisory lock: one migrator at a time


@dataclass
class Migration:
    version: str
    name: str
    sql: str

    @property
    def checksum(self) -> str:
        return hashlib.sha256(self.sql.encode()).hexdigest()


@dataclass
class MigrationResult:
    applied: list[str] = field(default_factory=list)
    current: str | None = None

    def describe(self) -> str:
        if not self.applied:
            return f"schema is up to date (version {self.current}); nothing changed"
        return f"applied {len(self.applied)} migration(s): {', '.join(self.applied)}; schema at version {self.current}"


def available_migrations() -> list[Migration]:
    files = sorted(p for p in resources.files("core.db").joinpath("migrations").iterdir() if p.name.endswith(".sql"))
    out = []
    for f in files:
        version, _, rest = f.name.partition("_")
        out.append(Migration(version=version, name=rest.removesuffix(".sql"), sql=f.read_text()))
    return out


def _prepare_embedded(db: Database) -> None:
    """Embedded server: create the database and the application role on first use."""
    with db.connect(ddl=True, autocommit=True, dbname="postgres") as conn:
        s = db.settings
        if not conn.execute("SELECT 1 FROM pg_roles WHERE rolname = %s", (s.user,)).fetchone():
            conn.execute(sql.SQL("CREATE ROLE {} LOGIN").format(sql.Identifier(s.user)))
        if not conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", (s.name,)).fetchone():
            conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(s.name)))


def migrate(db: Database, *, until: str | None = None) -> MigrationResult:
    """Apply pending migrations; a second call changes nothing. ``until``: stop after that version (a schema
    as an older release left it, e.g. to test an upgrade from it)."""
    db.conninfo()  # starts the embedded server when needed
    if db.is_embedded:
        _prepare_embedded(db)
    result = MigrationResult()
    with db.connect(ddl=True) as conn:
        conn.execute("SELECT pg_advisory_lock(%s)", (LOCK_KEY,))
        try:
            conn.execute(sql.SQL("CREATE SCHEMA IF NOT EXISTS {}").format(sql.Identifier(SCHEMA)))
            conn.execute(
                "CREATE TABLE IF NOT EXISTS ailog.schema_migrations ("
                " version text PRIMARY KEY, name text NOT NULL, checksum text NOT NULL,"
                " applied_at timestamptz NOT NULL DEFAULT now())"
            )
            conn.commit()
            applied = {v: c for v, c in conn.execute("SELECT version, checksum FROM ailog.schema_migrations")}
            for m in available_migrations():
                if until is not None and m.version > until:
                    break
                if m.version in applied:
                    if applied[m.version] != m.checksum:
                        raise AilogError(
                            f"migration {m.version}_{m.name}.sql was changed after it was applied; "
                            "restore it and add the change as a new migration"
                        )
                    continue
                with conn.transaction():
                    conn.execute(sql.SQL("SET LOCAL search_path = {}").format(sql.Identifier(SCHEMA)))
                    conn.execute(m.sql)
                    conn.execute(
                        "INSERT INTO ailog.schema_migrations (version, name, checksum) VALUES (%s, %s, %s)",
                        (m.version, m.name, m.checksum),
                    )
                result.applied.append(f"{m.version}_{m.name}")
            _grant_app_privileges(conn, db)
            conn.commit()
            result.current = conn.execute("SELECT max(version) FROM ailog.schema_migrations").fetchone()[0]
        except psycopg.errors.InsufficientPrivilege as exc:
            conn.rollback()
            raise ConfigError(
                f"the DDL user cannot change the schema ({exc.diag.message_primary}); "
                "check DB_DDL_USER / DB_DDL_ROLE"
            ) from None
        finally:
            if not conn.closed:
                conn.execute("SELECT pg_advisory_unlock(%s)", (LOCK_KEY,))
                conn.commit()
    return result


def _grant_app_privileges(conn: psycopg.Connection, db: Database) -> None:
    """Data privileges only for the application user (idempotent)."""
    s = db.settings
    owner = conn.execute("SELECT current_user").fetchone()[0]
    if s.user == owner:
        return
    if not conn.execute("SELECT 1 FROM pg_roles WHERE rolname = %s", (s.user,)).fetchone():
        raise ConfigError(f"application user {s.user!r} does not exist on the server; check DB_USER")
    app = sql.Identifier(s.user)
    schema = sql.Identifier(SCHEMA)
    for stmt in (
        "GRANT USAGE ON SCHEMA {schema} TO {app}",
        "GRANT SELECT, INSERT, UPDATE, DELETE ON ALL TABLES IN SCHEMA {schema} TO {app}",
        "GRANT USAGE, SELECT, UPDATE ON ALL SEQUENCES IN SCHEMA {schema} TO {app}",
        "REVOKE CREATE ON SCHEMA {schema} FROM {app}",
    ):
        conn.execute(sql.SQL(stmt).format(schema=schema, app=app))


def schema_version(db: Database) -> str | None:
    """The applied version, or None when the schema was never migrated."""
    with db.connect() as conn:
        try:
            row = conn.execute("SELECT max(version) FROM ailog.schema_migrations").fetchone()
        except psycopg.errors.UndefinedTable:
            return None
        return row[0]


def require_migrated(db: Database) -> None:
    """Configured servers must be migrated explicitly; the embedded one migrates itself."""
    if db.is_embedded:
        migrate(db)
        return
    latest = available_migrations()[-1].version
    current = schema_version(db)
    if current != latest:
        raise ConfigError(
            f"the database schema is at version {current or 'none'}, this release needs {latest}: "
            "run `ailog db migrate` (as the DDL user)"
        )
