"""Fan-out: a 3-day backfill submits one count-only child run per day through a real Prefect API to a
process work pool (standing in for Kubernetes: the same `prefect flow-run execute` in its own process), a real
`prefect worker` runs them, the parent judges the windows in order — and the database ends with the same rows
as a serial backfill of the same days.

Both databases first learn one day serially (a warm-up): online template mining is order-dependent, so a
template first met in parallel children may be grouped differently than a serial pass would group it — the
limit documented in docs/DEPLOYMENT.md. Once the grouping knows the templates, the rows are identical."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import uuid
from datetime import date
from pathlib import Path

import pytest

from ailog.simulation import generate
from tests.conftest import clone_database

ROOT = Path(__file__).resolve().parents[1]
WARM, START, END = date(2026, 11, 2), date(2026, 11, 3), date(2026, 11, 5)
VOLATILE = {"run_id", "processed_at", "created_at", "updated_at", "opened_at", "last_alert_at", "closed_at",
            "started_at", "finished_at", "learned_at", "id"}
TABLES = ("windows", "window_counts", "window_totals", "window_dimensions", "window_problem_samples", "peaks",
          "incidents", "problems", "grouping_templates", "problem_aliases", "known_peaks", "outbox")


def rows(db) -> dict[str, list]:
    out = {}
    with db.connect() as conn:
        for table in TABLES:
            cols = [r[0] for r in conn.execute(
                "SELECT column_name FROM information_schema.columns WHERE table_name = %s ORDER BY ordinal_position",
                (table,)) if r[0] not in VOLATILE]
            listed = ", ".join(cols)
            out[table] = sorted(tuple(str(v) for v in r) for r in conn.execute(f"SELECT {listed} FROM {table}"))  # noqa: S608
    return out


def use_db(monkeypatch, db, home: Path) -> dict[str, str]:
    s = db.settings
    env = {"DB_HOST": s.host, "DB_PORT": str(s.port), "DB_NAME": s.name, "DB_USER": s.user,
           "DB_DDL_USER": s.ddl_user, "AILOG_HOME": str(home), "AILOG_USE_BLOCKS": "false"}
    for k, v in env.items():
        monkeypatch.setenv(k, v)
    for k in ("ES_HOST", "CONFLUENCE_URL", "TEAMS_WEBHOOK_URL"):
        monkeypatch.delenv(k, raising=False)
    return env


@pytest.mark.slow
def test_three_days_fan_out_to_three_child_runs_and_match_a_serial_backfill(prefect_api, pg_template, db, tmp_path,
                                                                          monkeypatch):
    from prefect import get_client
    from prefect.client.schemas.actions import WorkPoolCreate
    from prefect.client.schemas.filters import FlowRunFilter
    from prefect.settings import PREFECT_API_URL

    from flows.backfill import backfill

    files = [str(p) for p in generate(WARM, 4, seed=5, out_dir=tmp_path / "logs", apps=6).files]
    serial_db = clone_database(pg_template, f"serial_{uuid.uuid4().hex[:8]}")
    use_db(monkeypatch, serial_db, tmp_path / "serial-home")
    backfill(start=WARM, end=WARM, publish=False, output_dir=str(tmp_path / "serial"), input_paths=files[:1])
    serial = backfill(start=START, end=END, publish=False, output_dir=str(tmp_path / "serial"), input_paths=files[1:])
    assert serial["days_processed"] == 3 and serial["events"] > 0

    env = use_db(monkeypatch, db, tmp_path / "fan-home")
    backfill(start=WARM, end=WARM, publish=False, output_dir=str(tmp_path / "fan"), input_paths=files[:1])
    pool = f"fanout-{uuid.uuid4().hex[:6]}"
    with get_client(sync_client=True) as client:
        client.create_work_pool(WorkPoolCreate(name=pool, type="process"))
    deployment_id = backfill.from_source(source=str(ROOT), entrypoint="flows/backfill.py:backfill").deploy(
        name="fanout-test", work_pool_name=pool, print_next_steps=False, build=False, push=False)
    api = PREFECT_API_URL.value()
    worker_env = {**os.environ, **env, "PREFECT_API_URL": api, "PYTHONPATH": str(ROOT)}
    worker = subprocess.Popen([str(Path(sys.executable).parent / "prefect"), "worker", "start", "--pool", pool,
                               "--type", "process", "--limit", "3"], env=worker_env, cwd=str(ROOT),
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
    try:
        state = backfill(start=START, end=END, publish=False, output_dir=str(tmp_path / "fan"), input_paths=files[1:],
                         fan_out="backfill/fanout-test", return_state=True)
        summary = state.result()
    finally:
        os.killpg(worker.pid, signal.SIGTERM)
        try:
            worker.wait(30)
        except subprocess.TimeoutExpired:
            os.killpg(worker.pid, signal.SIGKILL)
    assert summary["days_processed"] == 3 and summary["events"] == serial["events"]
    with get_client(sync_client=True) as client:
        counted = client.read_flow_runs(flow_run_filter=FlowRunFilter(deployment_id={"any_": [deployment_id]}))
    assert len(counted) == 3 and all(c.state.is_completed() for c in counted)
    assert sorted(c.parameters["start"] for c in counted) == ["2026-11-03", "2026-11-04", "2026-11-05"]
    assert all(c.parameters["count_only"] for c in counted)
    fanned, expected = rows(db), rows(serial_db)
    for table in TABLES:
        assert fanned[table] == expected[table], table
    assert expected["peaks"] and expected["window_counts"]  # the comparison compared something
    with pg_template.connect(ddl=True, autocommit=True, dbname="postgres") as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{serial_db.settings.name}" WITH (FORCE)')
