"""Regular phase: every 15-minute window since the watermark (or --at / --start --end), alerts, CSV export."""

from __future__ import annotations

import logging
import time
from datetime import UTC, datetime, timedelta
from typing import Annotated

from prefect import flow
from pydantic import Field

from core.errors import AilogError
from core.ops.logging import configure_logging
from flows.common import (
    current_run_id,
    logical_now,
    open_state,
    parse_instant,
    push_metrics,
    record_run_end,
    record_run_start,
    refuse_future,
    tell,
)
from flows.hooks import regular_failed
from flows.naming import regular_run_name
from flows.progress import progress
from tasks import steps
from tasks.analysis import Window, align_down, describe_windows, prepare_context, windows_between
from tasks.detection import live

log = logging.getLogger("ailog.flows.regular")
WATERMARK = "regular"
LOCK_KEY = 0x52454755  # one regular run at a time, besides the deployment's concurrency limit


def plan_windows(conn, *, minutes: int, at: datetime | None, start: datetime | None, end: datetime | None,
                 now: datetime, lag_minutes: int, max_windows: int) -> tuple[list[Window], list[str]]:
    """Which windows to process, and warnings for the operator."""
    from tasks.store import read_watermark

    if at is not None:
        at_aligned = align_down(at, minutes)
        if at_aligned != at:
            raise AilogError(f"--at {at.isoformat()} is not a window end; windows end at :00, :15, :30 and :45")
        return [Window.ending_at(at, minutes)], []
    if start is not None or end is not None:
        if start is None or end is None:
            raise AilogError("--start and --end go together (ISO-8601 instants)")
        if end <= start:
            raise AilogError("--end must be after --start")
        return windows_between(start, end, minutes), []
    latest_end = align_down(now - timedelta(minutes=lag_minutes), minutes)
    mark = read_watermark(conn, WATERMARK)
    if mark is None:
        return [Window.ending_at(latest_end, minutes)], []
    windows = windows_between(mark, latest_end, minutes)
    warnings = []
    if len(windows) > max_windows:
        skipped = windows[:-max_windows]
        windows = windows[-max_windows:]
        warnings.append(
            f"the regular phase was behind by {len(skipped) + len(windows)} windows; processed the last "
            f"{len(windows)}, skipped {describe_windows(skipped)} — run `ailog backfill --start "
            f"{skipped[0].start.date()} --end {skipped[-1].start.date()}` to fill the gap")
    return windows, warnings


def _auto_publish(settings, output_dir: str) -> str:
    """Optional: the two registry tables to Confluence after each run; failures are non-blocking."""
    from tasks.publish.confluence.client import ConfluencePublisher
    from tasks.publish.confluence.pages import publish_tables

    try:
        return str(publish_tables(ConfluencePublisher(settings.confluence), settings.confluence, output_dir))
    except Exception as exc:
        log.warning("Confluence auto-publish failed (non-blocking; the CSVs are in %s): %s", output_dir, exc)
        return f"failed: {exc}"


def release_run_lock(lock_conn) -> None:
    """Release the regular-phase lock. When PostgreSQL restarted or failed over during the run, the lock's session
    is gone and so is the lock: nothing to release, and no reason to fail a run whose windows committed (each
    window holds its own transaction-level lock, so the windows stayed exclusive)."""
    import psycopg

    try:
        lock_conn.execute("SELECT pg_advisory_unlock(%s)", (LOCK_KEY,))
    except psycopg.OperationalError as exc:
        log.warning("the regular-phase lock's database session was lost during the run (%s): the server ended it, "
                    "and the lock with it", type(exc).__name__)


def _lock_busy(settings, began: float):
    """Another regular run holds the lock: end as a visible Cancelled state named "Skipped" with a metric,
    never as a Completed run that did nothing (a lock held for hours would otherwise look healthy)."""
    from prefect.states import Cancelled

    message = ("skipped: another regular run holds the regular-phase lock (pg_try_advisory_lock); if none is "
               "running, a lost session holds it until its TCP keepalive expires (about a minute)")
    log.warning(message)
    push_metrics(settings, "regular", "skipped_locked", round(time.monotonic() - began, 1), {"skipped_locked": 1})
    return Cancelled(name="Skipped", message=message)


REGULAR_TIMEOUT_S = 10 * 60  # well under the 15-minute cadence: a stuck run must not eat the next one's slot


@flow(name="regular", flow_run_name=regular_run_name, on_failure=[regular_failed], log_prints=False, retries=0,
      timeout_seconds=REGULAR_TIMEOUT_S)
def regular(
    window: Annotated[int, Field(ge=1, le=60, description="Window length in minutes; must divide an hour.")] = 15,
    at: Annotated[datetime | None, Field(description="Re-run the one window ending at this instant, e.g. "
                                         "2026-11-28T10:15:00Z.")] = None,
    start: Annotated[datetime | None, Field(description="Process every window from this instant (with end), "
                                            "exactly as live runs would, alerts included.")] = None,
    end: Annotated[datetime | None, Field(description="End of the range (ISO-8601 instant).")] = None,
    dry_run: Annotated[bool, Field(description="Read and analyse; write and send nothing.")] = False,
    output_dir: Annotated[str | None, Field(description="Directory for the CSV exports; default AILOG_REPORTS_DIR "
                                            "(/tmp/ailog/reports in the image). Later runs never read it.")] = None,
    input_paths: Annotated[list[str] | None, Field(description="NDJSON log files instead of Elasticsearch "
                                                   "(local runs and tests).")] = None,
) -> dict:
    """Process the due windows in order, exactly as live runs would; deliver the alerts, then export the CSVs.

    Args:
        window: window length in minutes; must divide an hour
        at: re-run the one window ending at this instant
        start: process every window from this instant (with end)
        end: end of the range
        dry_run: read and analyse; write and send nothing
        output_dir: directory for the CSV exports (default AILOG_REPORTS_DIR)
        input_paths: NDJSON log files instead of Elasticsearch
    """
    began = time.monotonic()
    configure_logging("regular")
    if 60 % window:
        raise AilogError(f"window must divide an hour (e.g. 5, 15, 30), got {window}")
    at, start, end = parse_instant(at, "at"), parse_instant(start, "start"), parse_instant(end, "end")
    refuse_future(datetime.now(UTC), at=at, end=end)
    settings, db = open_state(dry_run)
    output_dir = output_dir or settings.reports.directory
    from tasks.source import open_source

    source = open_source(settings, input_paths)
    steps.check_source(source)
    run_id = current_run_id()
    summary: dict = {"windows": 0, "events": 0, "peaks": 0, "alerts": 0, "alerts_queued": 0, "dry_run": dry_run,
                     "warnings": []}
    with db.connect(autocommit=True) as lock_conn:
        if not lock_conn.execute("SELECT pg_try_advisory_lock(%s)", (LOCK_KEY,)).fetchone()[0]:
            return _lock_busy(settings, began)
        try:
            now = logical_now()
            windows, warnings = plan_windows(lock_conn, minutes=window, at=at, start=start, end=end, now=now,
                                             lag_minutes=settings.analysis.ingest_lag_minutes,
                                             max_windows=settings.analysis.max_catchup_windows)
            for w in warnings:
                log.warning(w)
            summary["warnings"] = warnings
            record_run_start(db, run_id, "regular", {"windows": describe_windows(windows), "dry_run": dry_run}, dry_run)
            ctx = prepare_context(settings, db, source, run_id, dry_run=dry_run, read_ahead=True,
                                  input_paths=input_paths)
            ctx.now = now
            try:
                explicit = at is not None or start is not None
                catchup, latest = (windows[:-1], windows[-1:]) if not explicit else ([], windows)
                recheck, latest = ([], latest) if explicit else live.recheck_and_latest(lock_conn, settings, source,
                                                                                         windows, latest, now, summary)
                with progress(f"regular {describe_windows(windows)}", len(windows) + len(recheck)) as advance:
                    outcomes = steps.analyse_windows(ctx, recheck, "catchup", None, advance) if recheck else []
                    if catchup:
                        outcomes += steps.analyse_windows(ctx, catchup, "catchup", WATERMARK, advance)
                    if latest:
                        outcomes += steps.analyse_windows(ctx, latest, "regular", WATERMARK, advance)
            finally:
                ctx.close()
        finally:
            release_run_lock(lock_conn)
    summary["late_summary"] = bool(not dry_run and live.queue_missed(db, settings, outcomes))
    summary["windows"] = len(outcomes)
    summary["events"] = sum(o.events for o in outcomes)
    summary["peaks"] = sum(o.peaks for o in outcomes)
    summary["alerts"] = sum(o.alerts for o in outcomes)
    summary["alerts_queued"] = sum(o.alerts_queued for o in outcomes)
    summary["bad_documents"] = sum(o.bad_documents for o in outcomes)
    summary["db_write_seconds"] = round(sum(o.db_write_seconds for o in outcomes), 3)
    if outcomes:
        summary["lag_seconds"] = round((datetime.now(outcomes[-1].window.end.tzinfo) - outcomes[-1].window.end)
                                       .total_seconds())
    if outcomes and not dry_run:
        delivery = steps.deliver_outbox(settings, db)  # alerts first: nothing after this may hold them back
        summary["delivered"] = getattr(delivery, "sent", None)
        summary["exports"] = steps.export_tables(db, outcomes[-1].window.start.date(), output_dir)
        if "files_error" in summary["exports"]:
            summary["warnings"].append(summary["exports"]["files_error"])
            tell(f"warning: {summary['exports']['files_error']}")
        elif settings.confluence.configured and settings.confluence.auto_publish_regular:
            summary["confluence"] = _auto_publish(settings, output_dir)
    elif dry_run:
        for o in outcomes:
            for alert_peak in o.peak_rows:
                if alert_peak.alerted:
                    tell(f"[dry run] would alert Teams: {alert_peak.kind} of {alert_peak.problem_id} in {alert_peak.app}")
    summary["stage_seconds"] = ctx.times.rounded() if outcomes else {}
    summary["duration_s"] = round(time.monotonic() - began, 1)
    from flows.artifacts import leave_artifacts

    leave_artifacts("regular", summary)
    record_run_end(db, run_id, "completed", summary, None, dry_run)
    push_metrics(settings, "regular", "completed", summary["duration_s"], summary)
    tell(f"regular phase: {summary['windows']} window(s), {summary['events']} events, {summary['peaks']} peaks, "
          f"{summary['alerts']} critical alert(s)")
    return summary


# Re-runs of ranges (`--start/--end`, the `regular-rerun` deployment) may cover days of windows: same flow and
# name, bounded by the Job's deadline instead of the live runs' 10 minutes.
RERUN_TIMEOUT_S = 6 * 3600
regular_rerun = regular.with_options(timeout_seconds=RERUN_TIMEOUT_S)
