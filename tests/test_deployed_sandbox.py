"""The deployments run the way Kubernetes runs them (issue 11), following docs/DEPLOYMENT.md literally:

a real Prefect server and worker; `prefect --no-prompt deploy --all` from prefect.yaml; a process work pool named
like the Kubernetes one whose job command is `prefect flow-run execute` inside deploy/local/pod.sh — bubblewrap with
the Job's constraints (read-only root, only /tmp writable, uid 10001, the code read-only at /opt/ailog, the
Dockerfile's ENV); a real PostgreSQL over TCP with passwords; the real Elasticsearch, Teams and Confluence clients
against local servers. Every deployment is triggered as people type it, and the `regular` cron fires by itself.
"""

from __future__ import annotations

import json
import shutil
import sys
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import psycopg
import pytest

from ailog.simulation import generate
from tests.fakes.confluence_server import FakeConfluence
from tests.fakes.elasticsearch_server import FakeElasticsearch
from tests.fakes.teams_server import FakeTeams

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "deploy" / "local"))
from stack import Stack  # noqa: E402

pytestmark = [pytest.mark.slow,
              pytest.mark.skipif(shutil.which("bwrap") is None, reason="needs bubblewrap (.ci/run installs it)")]

NOW = datetime.now(UTC)
DAY = (NOW - timedelta(days=2)).date()  # a whole past day for backfill-rerun and publish
AT = (NOW - timedelta(minutes=40)).replace(second=0, microsecond=0)
AT = AT - timedelta(minutes=AT.minute % 15)  # a window end a little in the past, for regular-rerun


@pytest.fixture(scope="module")
def world(tmp_path_factory):
    data = generate(DAY - timedelta(days=1), 4, seed=11, out_dir=tmp_path_factory.mktemp("logs"), apps=3)
    docs = [json.loads(line) for f in data.files for line in f.read_text().splitlines()]
    with FakeElasticsearch(docs) as es, FakeTeams("workflow") as teams, FakeConfluence() as wiki, Stack() as stack:
        for page in ("101", "102", "103"):
            wiki.add_page(page, f"page {page}")
        stack.job_env.update({
            "ES_HOST": es.url, "TEAMS_WEBHOOK_URL": teams.url + "/workflows/run?sig=sandbox-secret",
            "TEAMS_WEBHOOK_KIND": "workflow", "CONFLUENCE_URL": wiki.url, "CONFLUENCE_USERNAME": "svc",
            "CONFLUENCE_PASSWORD": "pw", "CONFLUENCE_DAILY_REPORT_PAGE_ID": "101",
            "CONFLUENCE_KNOWN_ERRORS_PAGE_ID": "102", "CONFLUENCE_KNOWN_PEAKS_PAGE_ID": "103"})
        stack.build_image()
        stack.start_postgres()
        stack.start_prefect_server()
        yield {"stack": stack, "es": es, "teams": teams, "wiki": wiki, "docs": docs}


def _sql(stack: Stack, query: str, *args):
    env = stack.job_env
    with psycopg.connect(host=env["DB_HOST"], port=int(env["DB_PORT"]), dbname=env["DB_NAME"], user=env["DB_USER"],
                         password=env["DB_PASSWORD"], options="-c search_path=ailog") as conn:
        return conn.execute(query, args).fetchall()


def _completed(stack: Stack, run_id: str, timeout: float = 600) -> dict:
    run = stack.wait(run_id, timeout)
    assert run["state"]["type"] == "COMPLETED", f"{run['name']}: {run['state']}\n{stack.logs(run_id)[-4000:]}"
    return run


def _texts(teams: FakeTeams) -> list[str]:
    return [json.dumps(p) for p in teams.received]


def test_setup_steps_as_documented(world):
    """DEPLOYMENT.md steps 3, 4, 7 and the worker: migrate (in a pod), work pool, deploy --all, worker."""
    stack = world["stack"]
    migrated = stack.pod("ailog", "db", "migrate")
    assert migrated.returncode == 0, migrated.stderr[-3000:]
    assert "applied" in migrated.stdout
    again = stack.pod("ailog", "db", "migrate")
    assert again.returncode == 0 and "nothing changed" in again.stdout
    stack.create_pool()
    out = stack.deploy(image="registry.example.com/ai-log-analyzer:sandbox")
    assert "regular/regular" in out or "regular" in out
    stack.start_worker()


def test_backfill_rerun_of_one_day(world):
    stack, teams, wiki = world["stack"], world["teams"], world["wiki"]
    run_id = stack.run_deployment("backfill/backfill-rerun", f"day={DAY.isoformat()}")
    run = _completed(stack, run_id)
    assert run["name"] == f"backfill {DAY.isoformat()}"
    start = datetime(DAY.year, DAY.month, DAY.day, tzinfo=UTC)
    windows = _sql(stack, "SELECT count(*), sum(events_read) FROM windows WHERE window_start >= %s AND "
                          "window_start < %s", start, start + timedelta(days=1))
    expected = sum(1 for d in world["docs"] if d["@timestamp"].startswith(DAY.isoformat()))
    assert windows[0] == (96, expected)
    from tasks.read_ahead import MIN_CPUS, usable_cpus

    if usable_cpus() >= MIN_CPUS:  # the day was read, grouped and counted in a second process, in the sandbox too
        (summary,), = _sql(stack, "SELECT summary FROM runs WHERE run_id = %s", run_id)
        assert summary["read_ahead_rss_mib"] > 0 and summary["stage_seconds"]["read-ahead wait"] >= 0, summary
    assert _sql(stack, "SELECT count(*) FROM day_reports WHERE day = %s", DAY) == [(1,)]
    # the publish subflow ran in the same pod: Teams daily report and the three Confluence pages
    assert sum(1 for t in _texts(teams) if DAY.isoformat() in t and "report" in t.lower()) == 1
    assert wiki.versions("101") > 1 and DAY.isoformat() in wiki.body("101")
    assert wiki.versions("102") > 1 and wiki.versions("103") > 1


def test_publish_in_another_pod_reads_the_report_from_postgresql(world):
    """A fresh pod: its /tmp is empty, so the report can only come from the database."""
    stack, teams, wiki = world["stack"], world["teams"], world["wiki"]
    before = wiki.versions("101")
    sent_before = len(teams.received)
    run = _completed(stack, stack.run_deployment("publish/publish", f"day={DAY.isoformat()}"))
    assert run["name"] == f"publish {DAY.isoformat()}"
    assert wiki.versions("101") == before, "same data, same page: no new version"
    assert DAY.isoformat() in wiki.body("101")
    assert len(teams.received) == sent_before, "the daily report was already delivered once"


def test_regular_rerun_at_a_window_end(world):
    stack = world["stack"]
    run = _completed(stack, stack.run_deployment("regular/regular-rerun", f"at={AT.isoformat().replace('+00:00', 'Z')}"))
    assert run["name"].startswith("regular ") and AT.strftime("%H:%MZ") in run["name"]
    rows = _sql(stack, "SELECT events_read FROM windows WHERE window_start = %s", AT - timedelta(minutes=15))
    expected = sum(1 for d in world["docs"]
                   if AT - timedelta(minutes=15) <= datetime.fromisoformat(d["@timestamp"].replace("Z", "+00:00")) < AT)
    assert rows == [(expected,)]
    # the watermark reached AT (or later: under load the `regular` cron may already have fired after this window)
    assert _sql(stack, "SELECT value FROM watermarks WHERE name = 'regular'")[0][0] >= AT


def test_a_failing_run_in_the_pod_sends_its_hook_alert(world):
    stack, teams = world["stack"], world["teams"]
    run_id = stack.run_deployment("backfill/backfill-rerun", f"day={DAY.isoformat()}",
                                  'input_paths=["/nonexistent/errors.ndjson"]', "publish=false")
    run = stack.wait(run_id)
    assert run["state"]["type"] == "FAILED", run["state"]
    # Prefect calls on_failure hooks after it has recorded FAILED, so the pod may still be sending: wait for it
    deadline = time.monotonic() + 120
    while not any(f"Backfill failed on {DAY.isoformat()}" in t for t in _texts(teams)) and time.monotonic() < deadline:
        time.sleep(1)
    assert any(f"Backfill failed on {DAY.isoformat()}" in t for t in _texts(teams)), stack.logs(run_id)[-3000:]
    assert "sandbox-secret" not in stack.logs(run_id)


@pytest.mark.timeout(30 * 60)  # up to one cadence (15 min) for the slot, then the run itself
def test_the_regular_cron_fires_by_itself(world):
    """The scheduler creates the next `5-59/15` run; the worker runs it in a pod. Waits up to one cadence."""
    stack = world["stack"]
    deadline = datetime.now(UTC) + timedelta(minutes=17)
    run = None
    while datetime.now(UTC) < deadline:
        runs = [r for r in stack.flow_runs("regular/regular") if r.get("auto_scheduled")]
        started = [r for r in runs if r["state"]["type"] not in {"SCHEDULED", "PENDING"}]
        if started:
            run = stack.wait(started[0]["id"], timeout=600)
            break

        time.sleep(5)
    assert run is not None, "the regular schedule never fired"
    assert run["state"]["type"] == "COMPLETED", f"{run['state']}\n{stack.logs(run['id'])[-4000:]}"
    scheduled = datetime.fromisoformat(run["expected_start_time"].replace("Z", "+00:00"))
    mark = _sql(stack, "SELECT value FROM watermarks WHERE name = 'regular'")[0][0]
    assert mark > AT and mark <= scheduled, (mark, scheduled)
