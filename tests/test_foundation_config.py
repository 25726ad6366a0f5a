"""Configuration: env vars, separate DDL user, clear one-line errors that never print secrets."""

from __future__ import annotations

import os
import subprocess
import sys

import psycopg
import pytest

from ailog.cli import COMMANDS_HELP, build_parser
from blocks.settings import DatabaseSettings, load_settings
from core.db import Database
from core.db.migrate import migrate
from tests.fakes.password_postgres import SUPERPASS, SUPERUSER

CONTRACT_COMMANDS = ["backfill", "regular", "publish", "group", "confluence-publish", "teams-test", "db", "demo"]


def run_ailog(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess:
    full_env = {k: v for k, v in os.environ.items() if not k.startswith(("DB_", "ES_", "TEAMS_", "CONFLUENCE_"))}
    full_env.update(env or {})
    return subprocess.run([sys.executable, "-m", "ailog.cli", *args], capture_output=True, text=True,
                          env=full_env, timeout=120)


def test_help_lists_every_contract_command():
    out = run_ailog("--help")
    assert out.returncode == 0
    for name in CONTRACT_COMMANDS:
        assert name in out.stdout
    assert set(CONTRACT_COMMANDS) <= set(COMMANDS_HELP)
    build_parser().parse_args(["db", "migrate"])


def test_env_variables_of_the_mission_are_read():
    env = {"DB_HOST": "db.bank", "DB_PORT": "6543", "DB_USER": "app", "DB_PASSWORD": "pw-app-123",
           "DB_DDL_USER": "owner", "DB_DDL_PASSWORD": "pw-ddl-456", "DB_DDL_ROLE": "ailog_ddl",
           "ES_HOST": "es.bank", "ES_PORT": "9201", "TEAMS_WEBHOOK_URL": "https://x.webhook.office.com/abc?sig=zzz",
           "TEAMS_ENABLED": "false", "CONFLUENCE_URL": "https://wiki.bank/", "CONFLUENCE_USERNAME": "svc",
           "CONFLUENCE_PASSWORD": "pw-conf-789", "CONFLUENCE_DAILY_REPORT_PAGE_ID": "1",
           "CONFLUENCE_KNOWN_ERRORS_PAGE_ID": "2", "CONFLUENCE_KNOWN_PEAKS_PAGE_ID": "3", "AILOG_HOME": "/tmp/x"}
    s = load_settings(env, use_blocks=False)
    assert (s.database.host, s.database.port, s.database.ddl_role) == ("db.bank", 6543, "ailog_ddl")
    assert s.elasticsearch.url == "https://es.bank:9201"
    assert load_settings({"ES_HOST": "http://127.0.0.1:9200"}, use_blocks=False).elasticsearch.url == "http://127.0.0.1:9200"
    assert s.teams.enabled is False and not s.teams.active
    assert s.confluence.url == "https://wiki.bank" and s.confluence.known_peaks_page_id == "3"
    text = repr(s) + str(s)
    for secret in ("pw-app-123", "pw-ddl-456", "sig=zzz", "pw-conf-789"):
        assert secret not in text


def test_missing_page_id_names_the_variable():
    from core.errors import ConfigError

    s = load_settings({"CONFLUENCE_URL": "https://wiki", "CONFLUENCE_DAILY_REPORT_PAGE_ID": "1"}, use_blocks=False)
    with pytest.raises(ConfigError, match="CONFLUENCE_KNOWN_ERRORS_PAGE_ID"):
        s.confluence.require_pages()


def test_bad_boolean_names_the_variable():
    from core.errors import ConfigError

    with pytest.raises(ConfigError, match="TEAMS_ENABLED"):
        load_settings({"TEAMS_ENABLED": "maybe"}, use_blocks=False)


def test_unreachable_database_is_one_clear_line(tmp_path):
    out = run_ailog("db", "migrate", env={"DB_HOST": "127.0.0.1", "DB_PORT": "1", "DB_PASSWORD": "s3cret-never-shown",
                                          "AILOG_HOME": str(tmp_path)})
    assert out.returncode == 2
    lines = out.stderr.strip().splitlines()
    assert len(lines) == 1, out.stderr
    assert "DB_HOST" in lines[0] and "Traceback" not in out.stderr
    assert "s3cret-never-shown" not in out.stderr + out.stdout


def test_wrong_password_names_the_setting(password_pg, tmp_path):
    out = run_ailog("db", "migrate", env={"DB_HOST": "127.0.0.1", "DB_PORT": str(password_pg.port),
                                          "DB_NAME": "postgres", "DB_USER": SUPERUSER,
                                          "DB_PASSWORD": "wrong-pass-xyz", "AILOG_HOME": str(tmp_path)})
    assert out.returncode == 2
    assert len(out.stderr.strip().splitlines()) == 1, out.stderr
    assert "DB_PASSWORD" in out.stderr and "wrong-pass-xyz" not in out.stderr


def test_separate_ddl_user_and_role_app_user_gets_data_privileges_only(password_pg, tmp_path):
    admin = psycopg.connect(host="127.0.0.1", port=password_pg.port, user=SUPERUSER, password=SUPERPASS,
                            dbname="postgres", autocommit=True)
    with admin:
        admin.execute("CREATE ROLE ailog_ddl NOLOGIN")
        admin.execute("CREATE ROLE migrator LOGIN PASSWORD 'migr-pw-1' IN ROLE ailog_ddl")
        admin.execute("CREATE ROLE appuser LOGIN PASSWORD 'app-pw-2'")
        admin.execute("CREATE DATABASE bankdb OWNER ailog_ddl")
    settings = DatabaseSettings(host="127.0.0.1", port=password_pg.port, name="bankdb", user="appuser",
                                password=_secret("app-pw-2"), ddl_user="migrator", ddl_password=_secret("migr-pw-1"),
                                ddl_role="ailog_ddl")
    db = Database(settings, tmp_path)
    first = migrate(db)
    assert first.applied
    assert migrate(db).applied == []
    with db.connect() as conn:
        conn.execute("INSERT INTO watermarks (name, value) VALUES ('regular', now())")
        conn.commit()
        assert conn.execute("SELECT count(*) FROM watermarks").fetchone()[0] == 1
        with pytest.raises(psycopg.errors.InsufficientPrivilege):
            conn.execute("DROP TABLE watermarks")
        conn.rollback()
        with pytest.raises(psycopg.errors.InsufficientPrivilege):
            conn.execute("CREATE TABLE ailog.x (a int)")
        conn.rollback()
    with db.connect(ddl=True) as conn:
        owner = conn.execute("SELECT tableowner FROM pg_tables WHERE tablename = 'watermarks'").fetchone()[0]
        assert owner == "ailog_ddl"


def _secret(value: str):
    from pydantic import SecretStr

    return SecretStr(value)

