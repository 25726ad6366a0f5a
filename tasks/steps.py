"""Thin Prefect tasks around the plain stage functions.

Every external call runs as a task with retries, exponential backoff with jitter and no result caching
(results would live in a pod's local storage, and a cached re-run would silently return old data).
"""

from __future__ import annotations

from prefect import task
from prefect.cache_policies import NO_CACHE
from prefect.tasks import exponential_backoff


def worth_retrying(task, task_run, state) -> bool:
    """Retry what may pass on its own (timeouts, 429/503, a lost connection); fail at once on what will not:
    a ConfigError (wrong setting, refused credentials, client/cluster major mismatch)."""
    from core.errors import ConfigError

    try:
        exc = state.result(raise_on_failure=False)
    except Exception:  # the state carries no readable result: err on the side of retrying
        return True
    return not isinstance(exc, ConfigError)


RETRY = dict(retries=3, retry_delay_seconds=exponential_backoff(backoff_factor=5), retry_jitter_factor=0.5,
             retry_condition_fn=worth_retrying, cache_policy=NO_CACHE, persist_result=False)
WINDOWS_PER_TASK = 4  # one task run per hour of windows: the UI shows progress, a retry re-does only that hour


@task(name="check-source", **RETRY)
def check_source(source) -> str:
    """Fail fast when the log source is unreachable or incompatible (e.g. client/cluster major mismatch)."""
    source.check()
    return source.describe()


def _batch_name() -> str:
    from prefect.runtime import task_run

    from tasks.models import iso_z

    windows = task_run.parameters["windows"]
    return f"{task_run.parameters['mode']} {iso_z(windows[0].start)} → {iso_z(windows[-1].end)}"


@task(name="analyse-windows", task_run_name=_batch_name, **RETRY)
def analyse_batch(ctx, windows: list, mode: str, watermark: str | None = None, progress=None,
                  judge: bool = True) -> list:
    """Analyse a few windows in order through the shared code path; a retry re-runs them idempotently."""
    from tasks.analysis import analyse_window

    outcomes = []
    for w in windows:
        outcomes.append(analyse_window(ctx, w, mode=mode, watermark=watermark, judge=judge))
        if progress is not None:
            progress()
    return outcomes


def analyse_windows(ctx, windows: list, mode: str, watermark: str | None = None, progress=None,
                    judge: bool = True) -> list:
    """Windows in order, one task run per hour of them (a failure stops the rest: windows must stay in order).
    ``judge=False``: store the counts only (a fanned-out backfill's child, flows/fanout.py)."""
    ctx.plan(windows)
    outcomes = []
    for i in range(0, len(windows), WINDOWS_PER_TASK):
        batch = windows[i:i + WINDOWS_PER_TASK]
        outcomes += analyse_batch(ctx, batch, mode, watermark, progress, judge)
    return outcomes


@task(name="write-day-reports", cache_policy=NO_CACHE, persist_result=False, retries=1, retry_delay_seconds=5,
      retry_condition_fn=worth_retrying)
def write_day_reports(db, day, output_dir: str, run_id: str | None = None) -> dict:
    """The day's report into PostgreSQL, then its files (a directory that cannot be written is reported, not fatal)."""
    from tasks.reports.writer import write_day_reports as write

    return write(db, day, output_dir, run_id)


@task(name="export-tables", cache_policy=NO_CACHE, persist_result=False)
def export_tables(db, day, output_dir: str) -> dict:
    """The registry CSVs; a directory that cannot be written is reported, never a reason to fail the run."""
    from tasks.reports.writer import export_tables as export
    from tasks.reports.writer import unwritable

    try:
        return export(db, day, output_dir)
    except OSError as exc:
        return unwritable(output_dir, exc)


@task(name="deliver-outbox", cache_policy=NO_CACHE, persist_result=False)
def deliver_outbox(settings, db, dry_run: bool = False):
    """Deliver queued Teams messages; failures stay queued for the next run (non-blocking)."""
    from core.ops.metrics import push_outbox_metrics
    from tasks.outbox import deliver_pending
    from tasks.outbox.outbox import RetryPolicy
    from tasks.publish.teams.sender import TeamsSender

    senders = {"teams": TeamsSender(settings.teams)} if settings.teams.active else {}
    report = deliver_pending(db, senders, dry_run=dry_run, policy=RetryPolicy.from_settings(settings.teams))
    if not dry_run:
        push_outbox_metrics(report.pending, report.dead_total, settings.analysis.pushgateway_url)
    return report


@task(name="publish-confluence", cache_policy=NO_CACHE, persist_result=False)
def publish_confluence(settings, report: dict, output_dir: str, dry_run: bool = False) -> dict:
    from tasks.publish.confluence.client import ConfluencePublisher
    from tasks.publish.confluence.pages import publish_all

    return publish_all(ConfluencePublisher(settings.confluence), settings.confluence, report, output_dir, dry_run=dry_run)
