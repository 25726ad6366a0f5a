"""Publish: the day's report to Teams (top 5), the three Confluence pages, and delivery of the outbox.

Teams and Confluence failures are non-blocking (MISSION.md): they are logged as warnings, the data stays in
PostgreSQL and the local files, and the next run retries (Teams through the outbox).
"""

from __future__ import annotations

import logging
import time
from datetime import date, timedelta
from pathlib import Path

import orjson
from prefect import flow

from ailog.ops.logging import configure_logging
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
from tasks import steps

log = logging.getLogger("ailog.flows.publish")


def load_or_build_report(db, day: date, output_dir: str, dry_run: bool) -> dict:
    """The day's report file when it exists (what people already read), else built from the database."""
    path = Path(output_dir) / f"problem_report_{day.isoformat()}.json"
    if path.exists():
        return orjson.loads(path.read_bytes())
    if dry_run:
        from tasks.reports.daily_report import build_daily_report

        with db.connect() as conn:
            return build_daily_report(conn, day)
    steps.write_day_reports(db, day, output_dir)
    return orjson.loads(path.read_bytes())


@flow(name="publish", log_prints=False, retries=0)
def publish(day: date | None = None, dry_run: bool = False, output_dir: str = "reports") -> dict:
    """Publish one day (default: yesterday)."""
    began = time.monotonic()
    configure_logging("publish")
    day = parse_day(day, "date") or (logical_today() - timedelta(days=1))
    settings, db = open_state(dry_run)
    run_id = current_run_id()
    record_run_start(db, run_id, "publish", {"day": day.isoformat(), "dry_run": dry_run}, dry_run)
    report = load_or_build_report(db, day, output_dir, dry_run)
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
        from ailog.ops.events import emit

        emit(event, detail)
    except Exception:  # noqa: S110 - events are best effort
        pass
