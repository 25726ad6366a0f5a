"""The three flows end to end through a real Prefect API, a real PostgreSQL, NDJSON input and a local Teams
webhook: backfill then regular windows; re-runs change nothing; dry runs touch nothing; failures behave as
MISSION.md says (a failing source fails the run and alerts; a failing Teams does not, and catches up once)."""

from __future__ import annotations

import json
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import pytest

from ailog.simulation import generate
from tests.fakes.confluence_server import FakeConfluence
from tests.fakes.teams_server import FakeTeams

START = date(2026, 11, 2)
TABLES = ("window_counts", "window_dimensions", "windows", "peaks", "problems", "incidents", "outbox", "runs",
          "grouping_templates", "known_peaks", "watermarks")


@pytest.fixture(scope="module")
def logs(tmp_path_factory) -> list[str]:
    data = generate(START, 3, seed=3, out_dir=tmp_path_factory.mktemp("logs"), apps=8)
    return [str(p) for p in data.files]


@pytest.fixture
def env(db, monkeypatch, tmp_path):
    s = db.settings
    for k, v in {"DB_HOST": s.host, "DB_PORT": str(s.port), "DB_NAME": s.name, "DB_USER": s.user,
                 "DB_DDL_USER": s.ddl_user, "AILOG_HOME": str(tmp_path / "home"), "AILOG_USE_BLOCKS": "false"}.items():
        monkeypatch.setenv(k, v)
    for k in ("ES_HOST", "CONFLUENCE_URL", "TEAMS_WEBHOOK_URL"):
        monkeypatch.delenv(k, raising=False)
    with FakeTeams("workflow") as teams, FakeConfluence() as wiki:
        monkeypatch.setenv("TEAMS_WEBHOOK_URL", teams.url + "/workflows/x?sig=abc")
        monkeypatch.setenv("TEAMS_WEBHOOK_KIND", "workflow")
        for env_name, page in (("CONFLUENCE_DAILY_REPORT_PAGE_ID", "1"), ("CONFLUENCE_KNOWN_ERRORS_PAGE_ID", "2"),
                               ("CONFLUENCE_KNOWN_PEAKS_PAGE_ID", "3")):
            wiki.add_page(page, env_name)
            monkeypatch.setenv(env_name, page)
        monkeypatch.setenv("CONFLUENCE_URL", wiki.url)
        monkeypatch.setenv("CONFLUENCE_USERNAME", "svc")
        monkeypatch.setenv("CONFLUENCE_PASSWORD", "pw")
        yield {"db": db, "teams": teams, "wiki": wiki, "out": tmp_path / "reports"}


def snapshot(db) -> dict:
    with db.connect() as conn:
        return {t: conn.execute(f"SELECT count(*) FROM {t}").fetchone()[0] for t in TABLES}  # noqa: S608


def total_counts(db) -> int:
    with db.connect() as conn:
        return conn.execute("SELECT coalesce(sum(count), 0) FROM window_counts").fetchone()[0]


def test_backfill_regular_rerun_and_dry_run(prefect_api, env, logs):
    from flows.backfill import backfill
    from flows.regular import regular

    db, teams, out = env["db"], env["teams"], env["out"]
    summary = backfill(start=START, end=START + timedelta(days=1), input_paths=logs, output_dir=str(out))
    assert summary["successful_days"] == ["2026-11-02", "2026-11-03"] and not summary["failed_days"]
    assert summary["publish"] == "completed"
    for name in ("problem_report_2026-11-03.json", "errors_table_latest.csv", "peaks_table_latest.csv",
                 "errors_table_2026-11-03.csv", "daily_report_2026-11-03.md"):
        assert (out / name).exists(), name
    report = json.loads((out / "problem_report_2026-11-03.json").read_text())
    assert report["totals"]["events"] > 0 and report["data_quality"]["windows_processed"] == 96
    daily = [p for p in teams.unique.values() if "Daily error report" in json.dumps(p)]
    assert len(daily) == 1 and "pageId=1" in json.dumps(daily[0])
    wiki = env["wiki"]
    assert [wiki.versions(p) for p in ("1", "2", "3")] == [2, 2, 2]
    assert "Error report 2026-11-03" in wiki.body("1") and "errors_table_latest.csv" in wiki.attachments["2"]
    events_after_backfill = total_counts(db)

    # the regular phase over the third day, window by window, alerts included
    day3 = datetime(2026, 11, 4, tzinfo=UTC)
    result = regular(start=day3, end=day3 + timedelta(days=1), input_paths=logs, output_dir=str(out))
    assert result["windows"] == 96
    with db.connect() as conn:
        alerted = conn.execute("SELECT count(*) FROM peaks WHERE alerted").fetchone()[0]
        watermark = conn.execute("SELECT value FROM watermarks WHERE name = 'regular'").fetchone()[0]
    assert watermark == day3 + timedelta(days=1)
    alerts = [p for p in teams.unique.values() if "Critical" in json.dumps(p)]
    assert alerted >= 1 and len(alerts) == alerted
    truth = json.loads(Path(logs[0]).with_name("truth.json").read_text())
    critical_day3 = [i for i in truth["incidents"] if i["critical"] and i["start"].startswith("2026-11-04")]
    assert critical_day3, "the generator injects critical incidents every day"

    # re-running a day and a range changes nothing and alerts nobody twice
    before, sent = snapshot(db), dict(teams.unique)
    counts_before = total_counts(db)
    backfill(start=START + timedelta(days=1), end=START + timedelta(days=1), input_paths=logs, output_dir=str(out))
    regular(start=day3, end=day3 + timedelta(days=1), input_paths=logs, output_dir=str(out))
    after = snapshot(db)
    assert total_counts(db) == counts_before and counts_before > events_after_backfill
    assert {k: v for k, v in after.items() if k != "runs"} == {k: v for k, v in before.items() if k != "runs"}
    assert teams.unique.keys() == sent.keys() and teams.duplicates == 0
    from flows.publish import publish

    publish(day=START + timedelta(days=1), output_dir=str(out))  # the regular phase changed the latest tables
    from prefect.artifacts import Artifact

    assert Artifact.get("ailog-top-problems") is not None and Artifact.get("ailog-publish-summary") is not None
    assert Artifact.get("ailog-confluence-known-peaks") is not None
    versions = [wiki.versions(p) for p in ("1", "2", "3")]
    publish(day=START + timedelta(days=1), output_dir=str(out))  # the same data again: no new page versions
    assert [wiki.versions(p) for p in ("1", "2", "3")] == versions

    # a dry run writes nothing and sends nothing
    requests_before = len(teams.requests)
    before = snapshot(db)
    backfill(start=START, end=START, input_paths=logs, output_dir=str(out), dry_run=True)
    regular(at=day3 + timedelta(hours=12), input_paths=logs, output_dir=str(out), dry_run=True)
    assert snapshot(db) == before and len(teams.requests) == requests_before


def test_failing_source_fails_the_backfill_and_the_alert_arrives(prefect_api, env, monkeypatch):
    from flows.backfill import backfill

    monkeypatch.setenv("ES_HOST", "http://127.0.0.1:1")
    with pytest.raises(Exception, match="Elasticsearch"):
        backfill(start=START, end=START, output_dir=str(env["out"]), publish=False)
    failed = [p for p in env["teams"].unique.values() if "Backfill failed on 2026-11-02" in json.dumps(p)]
    assert len(failed) == 1


def test_teams_down_does_not_fail_the_backfill_and_catches_up_once(prefect_api, env, logs):
    from flows.backfill import backfill
    from flows.publish import publish

    teams = env["teams"]
    teams.down = True
    env["wiki"].password = "rotated"  # Confluence refuses our credentials: non-blocking too
    summary = backfill(start=START, end=START, input_paths=logs, output_dir=str(env["out"]))
    assert summary["successful_days"] == ["2026-11-02"] and summary["publish"] == "completed"
    assert (env["out"] / "errors_table_latest.csv").exists()  # the CSV is still written locally
    with env["db"].connect() as conn:
        assert conn.execute("SELECT count(*) FROM outbox WHERE status = 'pending'").fetchone()[0] == 1
    teams.down = False
    with env["db"].connect() as conn:  # the outbox's backoff (minutes) has passed
        conn.execute("UPDATE outbox SET next_attempt_at = now()")
        conn.commit()
    publish(day=START + timedelta(days=5), output_dir=str(env["out"]))  # any next run delivers the queue
    publish(day=START + timedelta(days=5), output_dir=str(env["out"]))
    daily = [k for k in teams.unique if k.startswith("daily_report:2026-11-02")]
    assert daily == ["daily_report:2026-11-02"] and teams.duplicates == 0
