"""SIGKILL of a running `ailog` process at a random point (a pod killed by OOM or eviction, where no hook runs),
then a re-run: the result equals an undisturbed run — no event lost or counted twice, no alert lost or sent twice.

The kill lands after a random number of windows has been committed (seeded, so a failure can be replayed),
while the process is in the middle of the next window's read or transaction.
"""

from __future__ import annotations

import os
import random
import signal
import subprocess
import sys
import time

import pytest

from tests.test_faults_flows import (  # noqa: F401 - the faults' environment (undisturbed baseline, fresh DB)
    DAY,
    END,
    START,
    assert_converged,
    docs,
    env,
    flows_env,
    run_until_done,
)

SEED = 20261129


def _windows_committed(db) -> int:
    with db.connect() as conn:
        return conn.execute("SELECT count(*) FROM windows").fetchone()[0]


def _kill_after(args: list[str], db, windows: int, timeout: float = 300) -> int:
    """Start `ailog ARGS`, SIGKILL it once `windows` windows are committed; returns the windows seen then."""
    from prefect.settings import PREFECT_API_URL

    child_env = {**os.environ, "PREFECT_API_URL": PREFECT_API_URL.value(), "AILOG_QUIET": "1"}
    proc = subprocess.Popen([sys.executable, "-m", "ailog.cli", *args], env=child_env, stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + timeout
    try:
        while time.monotonic() < deadline and proc.poll() is None:
            seen = _windows_committed(db)
            if seen >= windows:
                proc.send_signal(signal.SIGKILL)
                proc.wait(30)
                return seen
            time.sleep(0.05)
    finally:
        if proc.poll() is None:
            proc.kill()
    raise AssertionError(f"the process ended (rc={proc.returncode}) before {windows} windows were committed")


@pytest.mark.parametrize("draw", [0, 1])
def test_regular_killed_at_a_random_window_then_rerun(prefect_api, flows_env, draw):  # noqa: F811
    from flows.regular import regular

    windows = random.Random(SEED + draw).randint(1, 10)  # of the run's 12 windows
    seen = _kill_after(["regular", "--start", START.isoformat(), "--end", END.isoformat(),
                        "--output", flows_env["out"]], flows_env["db"], windows)
    assert windows <= seen < 12, "killed in the middle of the run"
    run_until_done(regular, flows_env)
    assert_converged(flows_env)


def test_backfill_killed_at_a_random_window_then_rerun(prefect_api, flows_env, docs):  # noqa: F811
    from flows.backfill import backfill

    db = flows_env["db"]
    windows = random.Random(SEED).randint(5, 80)  # of the day's 96
    seen = _kill_after(["backfill", "--start", DAY.isoformat(), "--end", DAY.isoformat(), "--no-publish",
                        "--output", flows_env["out"]], db, windows)
    assert windows <= seen < 96
    summary = backfill(start=DAY, end=DAY, publish=False, output_dir=flows_env["out"])
    assert summary["successful_days"] == [DAY.isoformat()]
    expected = sum(1 for d in docs if d["@timestamp"].startswith(DAY.isoformat()))
    with db.connect() as conn:
        stored = conn.execute("SELECT coalesce(sum(count), 0) FROM window_counts").fetchone()[0]
        read = conn.execute("SELECT count(*), coalesce(sum(events_read), 0) FROM windows").fetchone()
        registry = conn.execute("SELECT coalesce(sum(count_total), 0) FROM problems").fetchone()[0]
    assert (stored, tuple(read), registry) == (expected, (96, expected), expected)
