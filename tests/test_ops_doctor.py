"""`ailog doctor`: a pass/fail table of the configured dependencies, against the local servers."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

from core.errors import ConfigError
from tasks.registries import known_errors
from tests.fakes.confluence_server import FakeConfluence
from tests.fakes.elasticsearch_server import FakeElasticsearch
from tests.fakes.teams_server import FakeTeams


def test_doctor_passes_then_names_what_fails(db, tmp_path):
    s = db.settings
    with FakeElasticsearch([]) as es, FakeTeams("workflow") as teams, FakeConfluence() as wiki:
        for page in ("1", "2", "3"):
            wiki.add_page(page, page)
        env = {k: v for k, v in os.environ.items() if not k.startswith(("DB_", "ES_", "TEAMS_", "CONFLUENCE_"))}
        env.update({"DB_HOST": s.host, "DB_PORT": str(s.port), "DB_NAME": s.name, "DB_USER": s.user,
                    "AILOG_HOME": str(tmp_path), "ES_HOST": es.url, "TEAMS_WEBHOOK_URL": teams.url + "/w?sig=x",
                    "TEAMS_WEBHOOK_KIND": "workflow", "AILOG_DOCTOR_SEND_TEAMS": "true",
                    "CONFLUENCE_URL": wiki.url, "CONFLUENCE_USERNAME": "svc", "CONFLUENCE_PASSWORD": "pw",
                    "CONFLUENCE_DAILY_REPORT_PAGE_ID": "1", "CONFLUENCE_KNOWN_ERRORS_PAGE_ID": "2",
                    "CONFLUENCE_KNOWN_PEAKS_PAGE_ID": "3", "COLUMNS": "200"})
        ok = subprocess.run([sys.executable, "-m", "ailog.cli", "doctor"], env=env, capture_output=True, text=True,
                            timeout=120)
        assert "PostgreSQL" in ok.stdout and "doctor" in teams.unique
        assert ok.stdout.count("pass") >= 3, ok.stdout
        env["CONFLUENCE_KNOWN_PEAKS_PAGE_ID"] = "404"
        bad = subprocess.run([sys.executable, "-m", "ailog.cli", "doctor"], env=env, capture_output=True, text=True,
                             timeout=120)
        assert bad.returncode == 1 and "CONFLUENCE_KNOWN_PEAKS_PAGE_ID" in bad.stdout and "pw" not in bad.stdout.split()


def test_doctor_names_the_missing_temporary_privilege(db, tmp_path):
    """The registry refresh stages its rows in a temporary table: a database that refuses them is named, with
    the GRANT that fixes it, before a run fails on it."""
    s = db.settings
    with db.connect(ddl=True, autocommit=True) as conn:
        conn.execute(f'REVOKE TEMPORARY ON DATABASE "{s.name}" FROM PUBLIC')
    env = {k: v for k, v in os.environ.items() if not k.startswith(("DB_", "ES_", "TEAMS_", "CONFLUENCE_"))}
    env.update({"DB_HOST": s.host, "DB_PORT": str(s.port), "DB_NAME": s.name, "DB_USER": s.user,
                "AILOG_HOME": str(tmp_path), "COLUMNS": "250"})
    bad = subprocess.run([sys.executable, "-m", "ailog.cli", "doctor"], env=env, capture_output=True, text=True,
                         timeout=120)
    assert bad.returncode == 1 and "GRANT TEMPORARY ON DATABASE" in bad.stdout, bad.stdout
    with db.connect() as conn, pytest.raises(ConfigError, match=f"GRANT TEMPORARY ON DATABASE {s.name} TO {s.user}"):
        known_errors._upsert(conn, [])
    with db.connect(ddl=True, autocommit=True) as conn:
        conn.execute(f'GRANT TEMPORARY ON DATABASE "{s.name}" TO PUBLIC')
    ok = subprocess.run([sys.executable, "-m", "ailog.cli", "doctor"], env=env, capture_output=True, text=True,
                        timeout=120)
    assert "GRANT TEMPORARY" not in ok.stdout and "reachable" in ok.stdout, ok.stdout
