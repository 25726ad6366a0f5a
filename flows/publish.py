"""Publish: the day's report to Teams (top 5), the three Confluence pages, and delivery of the outbox.

Teams and Confluence failures are non-blocking (MISSION.md): they are logged as warnings, the data stays in
PostgreSQL and the local files, and the next run retries (Teams through the outbox).
"""

from __future__ import annotations

import logging
import time
from datetime import date, timedelta
from typing import Annotated

import orjson
from prefect import flow
from pydantic import Field

from core.ops.logging import configure_logging
from flows.common import (
    current_run_id,
    logical_today,
    open_state,
    parse_day,
    push_metrics,
    record_run_end,
    record_run_start,
    tell,
)
from flows.naming import publish_run_name
from tasks import steps

log = logging.getLogger("ailog.flows.publish")


PUBLISH_TIMEOUT_S = 30 * 60


@flow(name="publish", flow_run_name=publish_run_name, log_prints=False, retries=0, timeout_seconds=PUBLISH_TIMEOUT_S)
def publish(
    day: Annotated[date | None, Field(description="The UTC day to publish, e.g. 2026-11-27 (default: yesterday).")] = None,
    dry_run: Annotated[bool, Field(description="Render what would be published; send nothing.")] = False,
    output_dir: Annotated[str | None, Field(description="Scratch directory for the CSVs and charts attached to the "
                                            "pages; default AILOG_REPORTS_DIR.")] = None,
) -> dict:
    """Publish one day (default: yesterday) from what PostgreSQL holds: no file of an earlier pod is needed.

    Args:
        day: the UTC day to publish, e.g. 2026-11-27 (default: yesterday)
        dry_run: render what would be published; send nothing
        output_dir: scratch directory for the CSVs and charts attached to the pages (default AILOG_REPORTS_DIR)
    """
    began = time.monotonic()
    configure_logging("publish")
    day = parse_day(day, "date") or (logical_today() - timedelta(days=1))
    settings, db = open_state(dry_run)
    output_dir = output_dir or settings.reports.directory
    run_id = current_run_id()
    record_run_start(db, run_id, "publish", {"day": day.isoformat(), "dry_run": dry_run}, dry_run)
    from tasks.reports.writer import stored_day_report, write_day_files

    report = stored_day_report(db, day, dry_run=dry_run)
    if not dry_run:  # the pages attach the day's CSVs and charts: rebuild them here from the database
        write_day_files(db, report, output_dir)
    summary: dict = {"day": day.isoformat(), "teams": "disabled", "confluence": "not configured", "dry_run": dry_run}

    from tasks.outbox import enqueue_teams, notifications_enabled
    from tasks.publish.teams import messages

    confluence_url = None
    if settings.confluence.configured and settings.confluence.daily_report_page_id:
        confluence_url = f"{settings.confluence.url}/pages/viewpage.action?pageId={settings.confluence.daily_report_page_id}"
    if settings.confluence.configured:
        try:
            result = steps.publish_confluence(settings, report, output_dir, dry_run)
            summary["confluence"] = result
        except Exception as exc:
            summary["confluence"] = f"failed: {exc}"
            log.warning("Confluence publishing failed (non-blocking; the CSVs are in %s; re-run `ailog publish "
                        "--date %s`): %s", output_dir, day, exc)
            _emit("ailog.confluence.unreachable", str(exc))

    if notifications_enabled(settings):
        message = messages.daily_report(report, confluence_url)
        if dry_run:
            tell(f"[dry run] would send the daily report to Teams: {orjson.dumps(message).decode()[:2000]}")
            summary["teams"] = "dry run"
        else:
            with db.connect() as conn:
                enqueue_teams(conn, settings, f"daily_report:{day.isoformat()}", "daily_report", message)
                conn.commit()
            delivery = steps.deliver_outbox(settings, db)
            summary["teams"] = {"sent": delivery.sent, "pending": delivery.pending, "failed": delivery.failed}
            if delivery.pending or delivery.failed:
                log.warning("Teams delivery incomplete (non-blocking): %s message(s) stay queued for the next run",
                            delivery.pending)
    summary["duration_s"] = round(time.monotonic() - began, 1)
    from flows.artifacts import leave_artifacts

    leave_artifacts("publish", summary, report, settings)
    record_run_end(db, run_id, "completed", summary, None, dry_run)
    push_metrics(settings, "publish", "completed", summary["duration_s"], summary)
    return summary


def _emit(event: str, detail: str) -> None:
    try:
        from core.ops.events import emit

        emit(event, detail)
    except Exception:  # noqa: S110 - events are best effort
        pass
