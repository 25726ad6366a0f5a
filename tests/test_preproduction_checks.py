"""The user's five pre-production tests, run as written (CLI commands), against a local Elasticsearch holding
yesterday's logs, the local Teams and Confluence servers and a real PostgreSQL. Dry runs write and send nothing."""

from __future__ import annotations

import os
import subprocess
import sys
from datetime import UTC, datetime, timedelta

from tests.fakes.confluence_server import FakeConfluence
from tests.fakes.elasticsearch_server import FakeElasticsearch
from tests.fakes.teams_server import FakeTeams

TABLES = ("window_counts", "peaks", "problems", "outbox", "windows", "runs")


def yesterdays_logs() -> list[dict]:
    start = datetime.now(UTC).replace(hour=0, minute=0, second=0, microsecond=0) - timedelta(days=1)
    docs = []
    for i in range(600):
        ts = start + timedelta(seconds=137 * i)
        docs.append({"@timestamp": ts.isoformat().replace("+00:00", "Z"), "message": f"Timeout after {i % 50} ms",
                     "service": {"name": ["payments", "accounts"][i % 2]}, "log": {"level": "ERROR"}})
    now = datetime.now(UTC)
    for i in range(40):  # the current hour, for the regular phase
        ts = now - timedelta(minutes=25) + timedelta(seconds=20 * i)
        docs.append({"@timestamp": ts.isoformat().replace("+00:00", "Z"), "message": "Disk full on /data",
                     "service": {"name": "batch"}})
    return docs


def ailog(*args: str, env: dict) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "ailog.cli", *args], env=env, capture_output=True, text=True,
                          timeout=300)


def counts(db) -> dict:
    with db.connect() as conn:
        return {t: conn.execute(f"SELECT count(*) FROM {t}").fetchone()[0] for t in TABLES}  # noqa: S608


def test_the_five_preproduction_tests(db, tmp_path, prefect_api):
    from prefect.settings import PREFECT_API_URL

    s = db.settings
    docs = yesterdays_logs()
    today = datetime.now(UTC).replace(hour=0, minute=0, second=0, microsecond=0)
    yesterday = sum(today - timedelta(days=1) <= datetime.fromisoformat(d["@timestamp"]) < today for d in docs)
    assert yesterday >= 600  # the day's 600, plus the current hour's 40 when the test runs just after midnight
    with FakeElasticsearch(docs) as es, FakeTeams("workflow") as teams, FakeConfluence() as wiki:
        for page in ("1", "2", "3"):
            wiki.add_page(page, page)
        env = {k: v for k, v in os.environ.items() if not k.startswith(("DB_", "ES_", "TEAMS_", "CONFLUENCE_"))}
        env.update({"DB_HOST": s.host, "DB_PORT": str(s.port), "DB_NAME": s.name, "DB_USER": s.user,
                    "AILOG_HOME": str(tmp_path / "home"), "ES_HOST": es.url, "TEAMS_WEBHOOK_KIND": "workflow",
                    "TEAMS_WEBHOOK_URL": teams.url + "/workflows/x?sig=s", "CONFLUENCE_URL": wiki.url,
                    "CONFLUENCE_USERNAME": "svc", "CONFLUENCE_PASSWORD": "pw", "CONFLUENCE_DAILY_REPORT_PAGE_ID": "1",
                    "CONFLUENCE_KNOWN_ERRORS_PAGE_ID": "2", "CONFLUENCE_KNOWN_PEAKS_PAGE_ID": "3",
                    "AILOG_QUIET": "1", "AILOG_INGEST_LAG_MINUTES": "0", "AILOG_USE_BLOCKS": "false",
                    "PREFECT_API_URL": PREFECT_API_URL.value()})  # the session's API: no server start per command
        out = str(tmp_path / "reports")
        before = counts(db)
        # 1. backfill of one day in dry-run mode
        one = ailog("backfill", "--days", "1", "--dry-run", "--output", out, env=env)
        assert one.returncode == 0, one.stderr[-2000:]
        assert "[dry run]" in one.stdout and f"would store {yesterday} events" in one.stdout
        # 2. the regular phase on a 15-minute window in dry-run mode
        two = ailog("regular", "--window", "15", "--dry-run", "--output", out, env=env)
        assert two.returncode == 0, two.stderr[-2000:]
        # 3. publishing in dry-run mode
        three = ailog("publish", "--dry-run", "--output", out, env=env)
        assert three.returncode == 0, three.stderr[-2000:]
        assert counts(db) == before and not teams.requests and all(wiki.versions(p) == 1 for p in "123")
        assert not es.open_pits
        # 4. a CSV to one Confluence page by hand
        csv_file = tmp_path / "table.csv"
        csv_file.write_text("problem_id,template\nP1,Timeout after <*> ms\n")
        four = ailog("confluence-publish", "--page-id", "2", "--csv-file", str(csv_file), "--title", "Known errors",
                     env=env)
        assert four.returncode == 0 and wiki.versions("2") == 2, four.stderr
        # 5. a test Teams notification
        five = ailog("teams-test", env=env)
        assert five.returncode == 0 and "teams-test" in teams.unique, five.stderr


def test_a_configuration_error_fails_at_once_with_one_line(db, tmp_path, prefect_api):
    """An 8.x cluster with the 9.x client: no retries (a wrong client never starts working), one clear line at the
    terminal, Prefect's task logs and tracebacks only with --verbose."""
    from prefect.settings import PREFECT_API_URL

    s = db.settings
    with FakeElasticsearch([], version="8.15.0") as es:
        env = {k: v for k, v in os.environ.items() if not k.startswith(("DB_", "ES_", "TEAMS_", "CONFLUENCE_"))}
        env.update({"DB_HOST": s.host, "DB_PORT": str(s.port), "DB_NAME": s.name, "DB_USER": s.user,
                    "AILOG_HOME": str(tmp_path / "home"), "ES_HOST": es.url, "AILOG_USE_BLOCKS": "false",
                    "TEAMS_ENABLED": "false", "PREFECT_API_URL": PREFECT_API_URL.value()})
        quiet = ailog("backfill", "--days", "1", "--no-publish", env=env)
        calls = len(es.requests)
        verbose = ailog("--verbose", "backfill", "--days", "1", "--no-publish", env=env)
    assert quiet.returncode == 2
    lines = [line for line in quiet.stderr.splitlines() if line.strip()]
    assert len(lines) == 1 and "elasticsearch>=8" in lines[0] and lines[0].startswith("ailog backfill: error:"), lines
    assert "Traceback" not in quiet.stdout + quiet.stderr
    assert calls == 1, f"the version check was retried: {calls} requests"
    assert verbose.returncode == 2 and "Traceback" in verbose.stderr + verbose.stdout
