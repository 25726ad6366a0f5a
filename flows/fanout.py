"""Fan-out of a multi-day backfill on Prefect itself: one child flow run per day, each in its own pod.

Reading, grouping and counting a day is the per-event work: the children do it in parallel (`count_only`
runs of the backfill deployment, submitted with `run_deployment` to its work pool, so each gets its own pod
and resources). Judging a window (detection, registries, alerts) needs every earlier window's counts (the
baselines), so the parent then judges all windows in time order from the stored counts — the same rows a
serial backfill writes — and writes the reports and publishes once. Every step is idempotent: a child re-run
replaces its windows' rows under the per-window advisory lock, so children of one day never interleave.
"""

from __future__ import annotations

import logging
import time
from datetime import date

from tasks.analysis import AnalysisContext, judge_stored_window

log = logging.getLogger("ailog.flows.fanout")
POLL_SECONDS = 2.0
CHILD_TIMEOUT_SECONDS = 6 * 3600


def own_deployment() -> str | None:
    """"flow/deployment" of the running flow when it was started from a deployment."""
    from prefect.runtime import deployment, flow_run

    name = deployment.name
    return f"{flow_run.flow_name}/{name}" if name else None


def count_days_in_children(days: list[date], deployment: str, *, input_paths: list[str] | None, output_dir: str,
                           timeout_s: float = CHILD_TIMEOUT_SECONDS) -> dict[str, str]:
    """Submit one count-only child run per day and wait for all; returns {day: final state name}."""
    from prefect.deployments import run_deployment

    if deployment == "self":
        resolved = own_deployment()
        if resolved is None:
            from core.errors import ConfigError

            raise ConfigError("fan_out='self' needs the backfill to run from a deployment; name one instead "
                              "(e.g. fan_out='backfill/backfill')")
        deployment = resolved
    _check_room(deployment, len(days))
    submitted = {}
    for day in days:
        params = {"start": day.isoformat(), "end": day.isoformat(), "publish": False, "output_dir": output_dir,
                  "count_only": True}
        if input_paths:
            params["input_paths"] = list(input_paths)
        run = run_deployment(name=deployment, parameters=params, timeout=0, as_subflow=True,
                             flow_run_name=f"backfill-count-{day.isoformat()}")
        submitted[day.isoformat()] = run.id
        log.info("submitted the count run of %s to %s (flow run %s)", day, deployment, run.id)
    return wait_for_runs(submitted, timeout_s)


def _check_room(deployment: str, children: int) -> None:
    """A child deployment whose concurrency limit the parent itself holds would wait forever: refuse it."""
    from prefect.client.orchestration import get_client

    from core.errors import ConfigError

    with get_client(sync_client=True) as client:
        limit = client.read_deployment_by_name(deployment).global_concurrency_limit
    if limit is not None and own_deployment() == deployment and limit.limit <= 1:
        raise ConfigError(f"fan_out to {deployment}: its concurrency limit ({limit.limit}) is held by this run, so "
                          "the children would wait forever; fan out to a deployment of its own (see docs/DEPLOYMENT.md)")
    if limit is not None and limit.limit < children:
        log.info("%s runs at most %d at a time: %d day(s) queue", deployment, limit.limit, children)


def wait_for_runs(runs: dict[str, object], timeout_s: float) -> dict[str, str]:
    """Poll the API until every run is final; a run still going at the timeout counts as failed."""
    from prefect.client.orchestration import get_client

    states: dict[str, str] = {}
    deadline = time.monotonic() + timeout_s
    with get_client(sync_client=True) as client:
        while len(states) < len(runs) and time.monotonic() < deadline:
            for key, run_id in runs.items():
                if key in states:
                    continue
                state = client.read_flow_run(run_id).state
                if state is not None and state.is_final():
                    states[key] = state.name if state.is_completed() else f"{state.name}: {state.message or ''}"
            if len(states) < len(runs):
                time.sleep(POLL_SECONDS)
    for key in runs:
        states.setdefault(key, f"not finished within {timeout_s:.0f} s")
    return states


def judge_days(ctx: AnalysisContext, windows: list, progress=None) -> list:
    """Judge the stored windows in time order (detection needs the earlier windows' counts)."""
    outcomes = []
    for w in windows:
        outcomes.append(judge_stored_window(ctx, w, mode="backfill"))
        if progress is not None:
            progress()
    return outcomes
