"""Connections to the configured (or embedded) PostgreSQL, with errors that name the setting to fix."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import replace
from pathlib import Path

import psycopg

from core.db.settings import DatabaseSettings
from core.errors import ConfigError, ServiceUnavailable

SCHEMA = "ailog"
# A node that vanishes (pod evicted, network cut) must not hold its session — and the regular phase's advisory
# lock — for the kernel's default two hours: both ends probe an idle TCP connection after 30 s, every 10 s,
# and give up after 3 unanswered probes (~1 minute). Ignored on Unix sockets.
KEEPALIVES = {"keepalives": 1, "keepalives_idle": 30, "keepalives_interval": 10, "keepalives_count": 3}
SERVER_KEEPALIVES = "-c tcp_keepalives_idle=30 -c tcp_keepalives_interval=10 -c tcp_keepalives_count=3"
# Every time the tool stores or reads is UTC (windows, days, times of day). A server whose default time zone is
# local (Europe/Prague) or spelled otherwise (Etc/UTC) would hand back timestamps in that zone: a window's hour
# read in local time, and zoneinfo datetimes that hash and compare several times slower than UTC ones.
SESSION_TIMEZONE = "-c TimeZone=UTC"


class Database:
    """One PostgreSQL database: ``connect()`` as the app user, ``connect(ddl=True)`` as the schema owner."""

    def __init__(self, settings: DatabaseSettings, home: Path | None = None) -> None:
        self.settings = settings
        self.home = home
        self.is_embedded = settings.embedded  # stays true once the embedded server's socket is filled in
        self._embedded = None

    # -- connection parameters -------------------------------------------------------------------
    def _resolve(self) -> DatabaseSettings:
        """For the embedded server: start it and point the settings at its socket."""
        if not self.settings.embedded:
            return self.settings
        if self._embedded is None:
            from core.db.embedded import SUPERUSER, start_embedded

            assert self.home is not None, "embedded database needs AILOG_HOME"
            self._embedded = start_embedded(self.home)
            self.settings = replace(
                self.settings,
                host=self._embedded.socket_dir,
                port=self._embedded.port,
                ddl_user=self.settings.ddl_user or SUPERUSER,
            )
        return self.settings

    def conninfo(self, *, ddl: bool = False, dbname: str | None = None) -> dict:
        s = self._resolve()
        user, password = s.user, s.password
        if ddl and s.ddl_user:
            user, password = s.ddl_user, s.ddl_password
        params = {
            "host": s.host,
            "port": s.port,
            "dbname": dbname or s.name,
            "user": user,
            "connect_timeout": s.connect_timeout,
            "application_name": "ailog",
            "options": f"-c search_path={SCHEMA},public -c statement_timeout={s.statement_timeout_ms} "
                       f"{SESSION_TIMEZONE} {SERVER_KEEPALIVES}",
            **KEEPALIVES,
        }
        if password is not None:
            params["password"] = password.get_secret_value()
        return params

    @contextmanager
    def connect(self, *, ddl: bool = False, autocommit: bool = False, dbname: str | None = None) -> Iterator[psycopg.Connection]:
        conn = self.open(ddl=ddl, autocommit=autocommit, dbname=dbname)
        try:
            yield conn
        finally:
            conn.close()

    def open(self, *, ddl: bool = False, autocommit: bool = False, dbname: str | None = None) -> psycopg.Connection:
        """A new connection the caller closes (`connect` for one block of work)."""
        params = self.conninfo(ddl=ddl, dbname=dbname)
        try:
            conn = psycopg.connect(autocommit=autocommit, **params)
        except psycopg.OperationalError as exc:
            message, settings_wrong = self._explain(exc, ddl=ddl, params=params)
            raise (ConfigError if settings_wrong else ServiceUnavailable)(message) from None
        if ddl and self.settings.ddl_role:
            try:
                conn.execute(psycopg.sql.SQL("SET ROLE {}").format(psycopg.sql.Identifier(self.settings.ddl_role)))
            except BaseException:
                conn.close()
                raise
        return conn

    def _explain(self, exc: Exception, *, ddl: bool, params: dict) -> tuple[str, bool]:
        """One line naming the settings to fix (the password never appears), and whether a setting is wrong
        (refused credentials, no such database or role) rather than the server unreachable right now."""
        reason = str(exc).strip().splitlines()[-1] if str(exc).strip() else type(exc).__name__
        secret = params.get("password")
        if secret:
            reason = reason.replace(secret, "**********")
        user_var, pw_var = ("DB_DDL_USER", "DB_DDL_PASSWORD") if ddl and self.settings.ddl_user else ("DB_USER", "DB_PASSWORD")
        where = f"{params['host']}:{params['port']}/{params['dbname']}"
        low = reason.lower()
        settings_wrong = True
        if "password" in low or "authentication" in low:
            hint = f"check {user_var} and {pw_var}"
        elif "does not exist" in low and "database" in low:
            hint = "check DB_NAME (or create the database)"
        elif "role" in low and "does not exist" in low:
            hint = f"check {user_var}"
        else:
            hint, settings_wrong = "check DB_HOST and DB_PORT, and that the server is running and reachable", False
        return f"cannot connect to PostgreSQL at {where} as {params['user']}: {reason} — {hint}", settings_wrong


def open_database(settings) -> Database:
    """The database of a `blocks.settings.Settings` (its `database` section, embedded under its `home`)."""
    return Database(settings.database, settings.home)
