"""Faults injected into the real flows (real Prefect API, real PostgreSQL, the real Elasticsearch client against
the strict local cluster, local Teams and Confluence): whatever fails, re-running converges to exactly the
state of an undisturbed run — no event lost or counted twice, no alert lost or sent twice — and the run
itself says what happened (failed, skipped), never a silent success."""

from __future__ import annotations

import json
import re
import threading
from datetime import UTC, date, datetime, timedelta

import orjson
import psycopg
import pytest

from ailog.simulation import generate
from tests.conftest import clone_database
from tests.fakes.elasticsearch_server import FakeElasticsearch
from tests.fakes.teams_server import FakeTeams
from tests.test_flows_end_to_end import env  # noqa: F401 - the flows' environment (DB, Teams, Confluence)

DAY = date(2026, 11, 2)
START = datetime(2026, 11, 2, 9, tzinfo=UTC)
END = START + timedelta(hours=3)  # 12 windows


@pytest.fixture(scope="module")
def docs(tmp_path_factory) -> list[dict]:
    data = generate(DAY, 1, seed=11, out_dir=tmp_path_factory.mktemp("faultlogs"), apps=6)
    return [orjson.loads(line) for line in data.files[0].read_bytes().splitlines() if line.strip()]


def state_of(db) -> dict:
    """Everything an undisturbed run decides: per-window counts, problem totals, peaks, queued alerts."""
    with db.connect() as conn:
        q = lambda sql: [tuple(r) for r in conn.execute(sql).fetchall()]  # noqa: E731
        return {
            "windows": q("SELECT window_start, sum(count) FROM window_counts GROUP BY 1 ORDER BY 1"),
            "problems": q("SELECT problem_id, count_total FROM problems ORDER BY 1"),
            "peaks": q("SELECT window_start, problem_id, app, kind, alerted FROM peaks ORDER BY 1, 2, 3, 4"),
            "alerts": q("SELECT idempotency_key FROM outbox WHERE kind = 'alert' ORDER BY 1"),
        }


def events_in_range(docs: list[dict]) -> int:
    lo, hi = START.isoformat().replace("+00:00", ""), END.isoformat().replace("+00:00", "")
    return sum(1 for d in docs if lo <= d["@timestamp"][:19] < hi)


@pytest.fixture
def flows_env(env, docs, monkeypatch, pg_template):  # noqa: F811
    """An undisturbed run on the fixture's database, then a fresh database and Teams for the disturbed one."""
    from flows.regular import regular

    with FakeElasticsearch(docs) as es:
        monkeypatch.setenv("ES_HOST", es.url)
        monkeypatch.setenv("ES_PAGE_SIZE", "40")
        assert regular(start=START, end=END, output_dir=str(env["out"]))["windows"] == 12
        baseline = state_of(env["db"])
        assert sum(n for _w, n in baseline["windows"]) == events_in_range(docs) > 0
        disturbed = clone_database(pg_template, f"{env['db'].settings.name}_b")
        monkeypatch.setenv("DB_NAME", disturbed.settings.name)
        with FakeTeams("workflow") as teams:
            monkeypatch.setenv("TEAMS_WEBHOOK_URL", teams.url + "/workflows/x?sig=abc")
            yield {"es": es, "db": disturbed, "teams": teams, "baseline": baseline, "out": str(env["out"])}
        with pg_template.connect(ddl=True, autocommit=True, dbname="postgres") as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{disturbed.settings.name}" WITH (FORCE)')


def run_until_done(regular, fe, attempts: int = 6) -> list[str]:
    outcomes = []
    for _ in range(attempts):
        state = regular(start=START, end=END, output_dir=fe["out"], return_state=True)
        outcomes.append(state.type.value)
        if state.is_completed():
            return outcomes
    raise AssertionError(f"never completed: {outcomes}")


def assert_converged(fe) -> None:
    from blocks.settings import load_settings
    from tasks.outbox import deliver_pending
    from tasks.publish.teams.sender import TeamsSender

    assert state_of(fe["db"]) == fe["baseline"]
    deliver_pending(fe["db"], {"teams": TeamsSender(load_settings().teams)})
    sent_alerts = sorted(k for k in fe["teams"].unique if k.startswith("alert"))
    assert sent_alerts == [k for (k,) in fe["baseline"]["alerts"]] and fe["teams"].duplicates == 0


@pytest.mark.parametrize("faults", [
    {"faults": ["429", "503", "429", "503", "429"]},                       # a storm, absorbed by retries
    {"faults": [None] * 7 + ["failed_shards"]},                           # a partial page: the window is re-read
    {"faults": [None] * 9 + ["expired"]},                                 # the PIT vanishes mid-window: re-read
    {"down_after_pages": 15},                                             # the node dies after half the pages
])
def test_elasticsearch_faults_converge_to_the_undisturbed_state(prefect_api, flows_env, faults):
    from flows.regular import regular

    es = flows_env["es"]
    es.faults = list(faults.get("faults", []))
    es.down_after_pages = faults.get("down_after_pages")
    first = regular(start=START, end=END, output_dir=flows_env["out"], return_state=True)
    if "down_after_pages" in faults:
        assert first.is_failed(), "a node that stays gone must fail the run, not complete it with half the events"
    elif first.is_completed():  # the task's retries absorbed the fault: the result must already be exact
        assert state_of(flows_env["db"]) == flows_env["baseline"]
    es.down_after_pages = None
    es.faults = []
    run_until_done(regular, flows_env)
    assert_converged(flows_env)


def test_postgres_backend_killed_mid_window_then_rerun(prefect_api, flows_env):
    from flows.regular import regular

    db = flows_env["db"]
    with db.connect(ddl=True, autocommit=True) as conn:  # the server kills the session writing the 3rd window
        conn.execute("CREATE SEQUENCE IF NOT EXISTS ailog.fault_kill_seq")
        conn.execute("""CREATE OR REPLACE FUNCTION ailog.fault_kill() RETURNS trigger LANGUAGE plpgsql
            SECURITY DEFINER AS $$
            BEGIN IF nextval('ailog.fault_kill_seq') = 3 THEN PERFORM pg_terminate_backend(pg_backend_pid()); END IF;
            RETURN NEW; END $$""")
        conn.execute("CREATE TRIGGER fault_kill AFTER INSERT ON ailog.windows FOR EACH ROW EXECUTE FUNCTION ailog.fault_kill()")
    first = regular(start=START, end=END, output_dir=flows_env["out"], return_state=True)
    with db.connect(ddl=True) as conn:
        assert conn.execute("SELECT last_value FROM ailog.fault_kill_seq").fetchone()[0] > 3  # killed, then went on
    if first.is_completed():  # the task's retry re-ran the windows after the lost connection
        assert state_of(db) == flows_env["baseline"]
    run_until_done(regular, flows_env)
    assert_converged(flows_env)


def test_postgres_restarted_during_a_run_then_the_run_goes_on(prefect_api, flows_env, password_pg, monkeypatch):
    """A restart or fail-over of PostgreSQL in the middle of a run: every session ends and the server refuses
    connections for a few seconds. The windows' retries wait it out (an unreachable server is not a configuration
    error), the run lock's lost session does not fail a run whose windows committed, and the result equals an
    undisturbed run."""
    import time

    from blocks.settings import DatabaseSettings
    from core.db import Database
    from core.db.migrate import migrate
    from flows.regular import regular
    from tests.fakes.password_postgres import SUPERPASS, SUPERUSER

    def settings(name: str) -> DatabaseSettings:
        return DatabaseSettings(host="127.0.0.1", port=password_pg.port, name=name, user=SUPERUSER,
                                password=_secret(SUPERPASS))

    with Database(settings("postgres")).connect(autocommit=True) as conn:
        conn.execute('DROP DATABASE IF EXISTS "restarted" WITH (FORCE)')
        conn.execute('CREATE DATABASE "restarted"')
    db = Database(settings("restarted"))
    migrate(db)
    for k, v in {"DB_HOST": "127.0.0.1", "DB_PORT": str(password_pg.port), "DB_NAME": "restarted",
                 "DB_USER": SUPERUSER, "DB_PASSWORD": SUPERPASS}.items():
        monkeypatch.setenv(k, v)
    monkeypatch.delenv("DB_DDL_USER", raising=False)
    fe = {**flows_env, "db": db}

    restarted_at: list[int] = []

    def restart_after_three_windows() -> None:
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            with db.connect() as conn:
                committed = conn.execute("SELECT count(*) FROM windows").fetchone()[0]
            if committed >= 3:
                password_pg.restart(down_seconds=4)
                restarted_at.append(committed)
                return
            time.sleep(0.05)

    thread = threading.Thread(target=restart_after_three_windows)
    thread.start()
    state = regular(start=START, end=END, output_dir=fe["out"], return_state=True)
    thread.join()
    assert restarted_at and restarted_at[0] < 12, "the restart must land while windows remain"
    assert state.is_completed(), state.message
    assert_converged(fe)


def _secret(value: str):
    from pydantic import SecretStr

    return SecretStr(value)


def test_teams_down_for_several_runs_then_back(prefect_api, flows_env):
    from flows.regular import regular
    from tasks.outbox import deliver_pending

    teams = flows_env["teams"]
    teams.down = True
    for _ in range(3):
        assert regular(start=START, end=END, output_dir=flows_env["out"], return_state=True).is_completed()
    assert not teams.unique
    teams.down = False
    with flows_env["db"].connect() as conn:  # the backoff has passed
        conn.execute("UPDATE outbox SET next_attempt_at = now()")
        conn.commit()
    while deliver_pending(flows_env["db"], {"teams": _sender()}).sent:
        pass
    assert_converged(flows_env)


def _sender():
    from blocks.settings import load_settings
    from tasks.publish.teams.sender import TeamsSender

    return TeamsSender(load_settings().teams)


def test_two_regular_runs_at_once(prefect_api, flows_env):
    from flows.regular import regular

    states = []

    def run():
        states.append(regular(start=START, end=END, output_dir=flows_env["out"], return_state=True))

    threads = [threading.Thread(target=run) for _ in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(300)
    kinds = sorted((s.type.value, s.name) for s in states)
    assert kinds in ([("CANCELLED", "Skipped"), ("COMPLETED", "Completed")],
                     [("COMPLETED", "Completed"), ("COMPLETED", "Completed")]), kinds
    assert_converged(flows_env)


def test_lock_held_elsewhere_is_a_visible_skip_with_a_metric(prefect_api, flows_env, monkeypatch):
    import subprocess
    import urllib.request

    from flows.regular import LOCK_KEY, regular
    from tests.test_ops_metrics_automations import PUSHGATEWAY, free_port

    port = free_port()
    gw = subprocess.Popen([PUSHGATEWAY, f"--web.listen-address=127.0.0.1:{port}"], stdout=subprocess.DEVNULL,
                          stderr=subprocess.DEVNULL)
    try:
        monkeypatch.setenv("AILOG_PUSHGATEWAY_URL", f"http://127.0.0.1:{port}")
        with flows_env["db"].connect(autocommit=True) as holder:
            holder.execute("SELECT pg_advisory_lock(%s)", (LOCK_KEY,))
            state = regular(start=START, end=END, output_dir=flows_env["out"], return_state=True)
        assert (state.type.value, state.name) == ("CANCELLED", "Skipped") and "lock" in state.message
        body = urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5).read().decode()  # noqa: S310
        assert re.search(r'ailog_run_skipped_locked\{[^}]*flow="regular"[^}]*job="ailog_regular"[^}]*\} 1', body)
    finally:
        gw.terminate()
        gw.wait(10)


def test_future_instants_are_refused(prefect_api, flows_env):
    from core.errors import ConfigError
    from flows.regular import regular

    later = datetime.now(UTC).replace(second=0, microsecond=0) + timedelta(hours=2)
    later -= timedelta(minutes=later.minute % 15)
    for kwargs in ({"at": later}, {"start": START, "end": later}):
        with pytest.raises(ConfigError, match="in the future"):
            regular(output_dir=flows_env["out"], **kwargs)
    with flows_env["db"].connect() as conn:
        assert conn.execute("SELECT count(*) FROM watermarks").fetchone()[0] == 0


def test_a_dry_run_never_blocks_a_live_writer(db):
    from tasks.analysis import AnalysisContext

    with db.connect() as conn:
        conn.execute("INSERT INTO watermarks (name, value) VALUES ('probe', now())")
        conn.commit()
    ctx = AnalysisContext(settings=None, db=db, source=None, run_id="dry", dry_run=True)
    with ctx.transaction() as conn:
        assert conn.execute("SHOW transaction_isolation").fetchone()[0] == "repeatable read"
        conn.execute("UPDATE watermarks SET value = value + interval '1 hour' WHERE name = 'probe'")
    with ctx.transaction():  # the next dry window: the previous one's locks are gone
        with db.connect() as live:
            live.execute("SET lock_timeout = '2s'")
            live.execute("UPDATE watermarks SET value = value WHERE name = 'probe'")  # would wait on a held lock
            live.commit()
    ctx.close()
    with db.connect() as conn:
        assert conn.execute("SELECT count(*) FROM watermarks WHERE name = 'probe'").fetchone()[0] == 1


def test_re_backfilling_a_pruned_day_does_not_add_to_pruned_totals_again(prefect_api, env, monkeypatch, docs, tmp_path):  # noqa: F811
    from flows.backfill import backfill

    path = tmp_path / "day.ndjson"
    path.write_text("\n".join(json.dumps(d) for d in docs) + "\n")
    monkeypatch.setenv("AILOG_RETENTION_DAYS", "3")  # the day is older: pruned at the end of each backfill
    backfill(start=DAY, end=DAY, input_paths=[str(path)], output_dir=str(env["out"]), publish=False)
    with env["db"].connect() as conn:
        first = conn.execute("SELECT sum(count_pruned), sum(count_total) FROM problems").fetchone()
        assert conn.execute("SELECT count(*) FROM window_counts").fetchone()[0] == 0
    assert first[0] > 0
    backfill(start=DAY, end=DAY, input_paths=[str(path)], output_dir=str(env["out"]), publish=False)
    with env["db"].connect() as conn:
        again = conn.execute("SELECT sum(count_pruned), sum(count_total) FROM problems").fetchone()
    assert again == first


def test_the_runs_connection_is_kept_and_replaced_once_the_server_drops_it(db):
    """Windows share one connection (no backend start and cold caches per window); one the server ended in
    between (a restart, an idle timeout) is replaced before the next window instead of failing it."""
    from tasks.analysis import AnalysisContext

    ctx = AnalysisContext(settings=None, db=db, source=None, run_id="run", dry_run=False)
    with ctx.transaction() as conn:
        first = conn.info.backend_pid
    with ctx.transaction() as conn:
        assert conn.info.backend_pid == first
        conn.execute("INSERT INTO watermarks (name, value) VALUES ('kept', now())")
    with db.connect(ddl=True, autocommit=True) as admin:
        assert admin.execute("SELECT pg_terminate_backend(%s)", (first,)).fetchone()[0]
    with ctx.transaction() as conn:
        assert conn.info.backend_pid != first
        conn.execute("INSERT INTO watermarks (name, value) VALUES ('after', now())")
    with pytest.raises(psycopg.errors.UniqueViolation), ctx.transaction() as conn:  # a failed window: rolled back
        conn.execute("INSERT INTO watermarks (name, value) VALUES ('after', now())")
    with ctx.transaction() as conn:
        conn.execute("INSERT INTO watermarks (name, value) VALUES ('retried', now())")
    held = ctx._conn
    ctx.close()
    assert held.closed and ctx._conn is None
    with db.connect() as conn:
        assert {r[0] for r in conn.execute("SELECT name FROM watermarks")} == {"kept", "after", "retried"}
