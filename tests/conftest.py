"""Shared fixtures: a real embedded PostgreSQL for the session, a fresh migrated database per test,
and (on demand) one real Prefect API for the session."""

from __future__ import annotations

import hashlib
import itertools
import os
import shutil
import tempfile
from pathlib import Path

import pytest

from blocks.settings import DatabaseSettings
from core.db import Database
from core.db.migrate import migrate

_counter = itertools.count()


def pytest_sessionstart(session):
    """Compiled modules (setup.py) are imported before their .py files: after an edit, tests would run the old
    build. Refuse to start rather than test code that is not there (setup.py stamps the sources' digest)."""
    from tests.grouping_replay import COMPILED, ROOT

    tasks = ROOT / "tasks"
    rebuild = "`pip install -e .` (or `python setup.py build_ext --inplace`), or delete the .so files under tasks/"
    if list((tasks / "grouping").glob("native__mypyc*.so")):  # the build before the per-event modules joined it
        pytest.exit("tasks/grouping/native__mypyc*.so is left from an older build (a rebuild does not remove it; "
                    "the shared library is now tasks/native__mypyc*.so): `rm tasks/grouping/native__mypyc*.so`", 2)
    if not list(tasks.glob("native__mypyc*.so")):
        return
    digest = hashlib.sha256()
    for name in COMPILED:  # in setup.py's order
        digest.update((ROOT / (name.replace(".", "/") + ".py")).read_bytes())
    stamp = tasks / "native.sources"
    if not stamp.exists() or stamp.read_text().strip() != digest.hexdigest():
        pytest.exit(f"tasks/ has compiled modules built from other sources: rebuild them with {rebuild}", 2)


@pytest.fixture(scope="session")
def pg_home() -> Path:
    """AILOG_HOME of the session's embedded server (short path: Unix sockets have a length limit)."""
    path = Path(tempfile.mkdtemp(prefix="ailogpg-", dir="/tmp"))
    yield path
    from core.db.embedded import stop_embedded

    stop_embedded(path)
    shutil.rmtree(path, ignore_errors=True)  # ~140 MB a session: never leave it in /tmp


@pytest.fixture(scope="session")
def pg_template(pg_home: Path) -> Database:
    """A migrated template database; every test gets a copy of it."""
    db = Database(DatabaseSettings(name="ailog_template"), pg_home)
    migrate(db)
    return db


def clone_database(template: Database, name: str) -> Database:
    with template.connect(ddl=True, autocommit=True, dbname="postgres") as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}"')
        conn.execute(f'CREATE DATABASE "{name}" TEMPLATE "ailog_template"')
    return Database(DatabaseSettings(host=template.settings.host, port=template.settings.port, name=name,
                                     user="ailog", ddl_user="postgres"), template.home)


def rewind_schema(db: Database, version: str) -> None:
    """The database as the release at ``version`` left it (empty): its schema dropped and migrated up to there,
    so that an upgrade test writes what that release wrote and then applies the migrations after it."""
    with db.connect(ddl=True, autocommit=True) as conn:
        conn.execute("DROP SCHEMA ailog CASCADE")
    migrate(db, until=version)


@pytest.fixture
def db(pg_template: Database) -> Database:
    """A fresh, migrated database: connect() as the application user, connect(ddl=True) as the owner."""
    name = f"t{os.getpid()}_{next(_counter)}"
    database = clone_database(pg_template, name)
    yield database
    with pg_template.connect(ddl=True, autocommit=True, dbname="postgres") as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@pytest.fixture(scope="session")
def prefect_api():
    """One real Prefect API (the test harness: a local server on SQLite) for the whole session."""
    from prefect.testing.utilities import prefect_test_harness

    with prefect_test_harness(server_startup_timeout=120):
        yield


@pytest.fixture(scope="session")
def password_pg():
    """A PostgreSQL server on 127.0.0.1 that checks passwords (superuser tests.fakes.password_postgres.SUPERUSER)."""
    from tests.fakes.password_postgres import start_password_server

    server = start_password_server()
    yield server
    server.stop()


# --- in CI a skipped test is a failure: no check silently stops running ----------------------------------------
# A skip needs a reason that cannot be fixed by installing something in .ci/run; those few would be listed here
# (reason substring -> why). None today: the Loghub data is in tests/data, bwrap/promtool/pushgateway installed.
CI_ALLOWED_SKIPS: dict[str, str] = {}


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item, call):
    outcome = yield
    report = outcome.get_result()
    if not report.skipped or os.environ.get("CI", "").lower() not in ("1", "true", "yes"):
        return
    reason = str(report.longrepr[2] if isinstance(report.longrepr, tuple) else report.longrepr)
    if any(allowed in reason for allowed in CI_ALLOWED_SKIPS) or hasattr(report, "wasxfail"):
        return
    report.outcome = "failed"
    report.longrepr = f"skipped in CI ({reason}): install what the test needs in .ci/run instead of skipping it"
