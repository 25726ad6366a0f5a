"""Thin Prefect tasks around the plain stage functions.

Every external call runs as a task with retries, exponential backoff with jitter and no result caching
(results would live in a pod's local storage, and a cached re-run would silently return old data).
"""

from __future__ import annotations

from prefect import task
from prefect.cache_policies import NO_CACHE
from prefect.tasks import exponential_backoff

RETRY = dict(retries=3, retry_delay_seconds=exponential_backoff(backoff_factor=5), retry_jitter_factor=0.5,
             cache_policy=NO_CACHE, persist_result=False)


@task(name="check-source", **RETRY)
def check_source(source) -> str:
    """Fail fast when the log source is unreachable or incompatible (e.g. client/cluster major mismatch)."""
    source.check()
    return source.describe()


@task(name="analyse-windows", **RETRY)
def analyse_windows(ctx, windows: list, mode: str, watermark: str | None = None, progress=None) -> list:
    """Analyse windows in order through the shared code path; a retry re-runs them idempotently."""
    from flows.analysis import analyse_window

    outcomes = []
    for w in windows:
        outcomes.append(analyse_window(ctx, w, mode=mode, watermark=watermark))
        if progress is not None:
            progress()
    return outcomes


@task(name="write-day-reports", cache_policy=NO_CACHE, persist_result=False, retries=1, retry_delay_seconds=5)
def write_day_reports(db, day, output_dir: str) -> dict:
    from tasks.reports.writer import write_day_reports as write

    return write(db, day, output_dir)


@task(name="export-tables", cache_policy=NO_CACHE, persist_result=False, retries=1, retry_delay_seconds=5)
def export_tables(db, day, output_dir: str) -> dict:
    from tasks.reports.writer import export_tables as export

    return export(db, day, output_dir)


@task(name="deliver-outbox", cache_policy=NO_CACHE, persist_result=False)
def deliver_outbox(settings, db, dry_run: bool = False):
    """Deliver queued Teams messages; failures stay queued for the next run (non-blocking)."""
    from ailog.ops.metrics import push_outbox_metrics
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
