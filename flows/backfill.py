"""Backfill: whole past days, window by window through the shared analysis path, then reports and publish."""

from __future__ import annotations

import logging
import time
from datetime import date
from typing import Annotated

from prefect import flow
from pydantic import Field

from core.errors import AilogError
from core.ops.logging import configure_logging
from flows.common import (
    current_run_id,
    days_to_process,
    logical_today,
    open_state,
    parse_day,
    push_metrics,
    record_run_end,
    record_run_start,
    tell,
)
from flows.hooks import backfill_failed
from flows.naming import backfill_run_name
from flows.progress import progress
from tasks import steps
from tasks.analysis import day_window, prepare_context, start_read_ahead, windows_between

log = logging.getLogger("ailog.flows.backfill")


class BackfillFailed(AilogError):
    """Some days could not be processed; the message lists them and says how to re-run them."""


def _prune(db, retention_days: int) -> dict:
    """Per-window history older than the retention age goes; registries stay."""
    from datetime import UTC, datetime, timedelta

    from tasks.registries.retention import prune

    with db.connect() as conn:
        removed = prune(conn, datetime.now(UTC) - timedelta(days=retention_days))
        conn.commit()
    return removed


BACKFILL_TIMEOUT_S = 6 * 3600  # a day takes minutes; a long re-run of many days is split or fanned out


@flow(name="backfill", flow_run_name=backfill_run_name, on_failure=[backfill_failed], log_prints=False, retries=0,
      timeout_seconds=BACKFILL_TIMEOUT_S)
def backfill(
    days: Annotated[int, Field(ge=1, le=366, description="The N whole UTC days before today (1 = yesterday). "
                               "Ignored when day or start/end is given.")] = 1,
    day: Annotated[date | None, Field(description="One UTC day to (re)process, e.g. 2026-11-27.")] = None,
    start: Annotated[date | None, Field(description="First UTC day of a range (with end), e.g. 2026-11-25.")] = None,
    end: Annotated[date | None, Field(description="Last UTC day of the range, included.")] = None,
    dry_run: Annotated[bool, Field(description="Read and analyse; write and send nothing.")] = False,
    publish: Annotated[bool, Field(description="Run the publish subflow at the end (Teams, Confluence).")] = True,
    output_dir: Annotated[str | None, Field(description="Directory for report files; default AILOG_REPORTS_DIR "
                                            "(/tmp/ailog/reports in the image). Later runs never read it.")] = None,
    input_paths: Annotated[list[str] | None, Field(description="NDJSON log files instead of Elasticsearch "
                                                   "(local runs and tests).")] = None,
    fan_out: Annotated[str | None, Field(description="Count each day in its own child run of this deployment "
                                         "('self') or of the one named 'flow/deployment' (one pod per day), then "
                                         "judge every window here in order and publish once.")] = None,
    count_only: Annotated[bool, Field(description="What a fanned-out child does: read, group and store the "
                                      "day's counts; no detection, reports or publishing.")] = False,
) -> dict:
    """Analyse whole UTC days (default: yesterday), store the day's report, write the files, then publish.

    Args:
        days: the N whole UTC days before today (1 = yesterday); ignored when day or start/end is given
        day: one UTC day to (re)process, e.g. 2026-11-27
        start: first UTC day of a range (with end)
        end: last UTC day of the range, included
        dry_run: read and analyse; write and send nothing
        publish: run the publish subflow at the end
        output_dir: directory for report files (default AILOG_REPORTS_DIR)
        input_paths: NDJSON log files instead of Elasticsearch
        fan_out: a deployment to count each day in its own child run ("self" or "flow/deployment"); this run
            then judges every window in order, writes the reports and publishes once (flows/fanout.py)
        count_only: what such a child does: read, group and store the counts, nothing else
    """
    began = time.monotonic()
    configure_logging("backfill")
    if day is not None:
        if start is not None or end is not None:
            raise AilogError("give either day or start/end, not both")
        start = end = day
    day_list = days_to_process(days if not (start or end) else None, parse_day(start, "start"),
                               parse_day(end, "end"), logical_today())
    reading = not fan_out or dry_run or count_only  # this process reads the days (not children of a fan-out)
    started = start_read_ahead() if reading else None  # their start overlaps opening the database
    try:
        settings, db = open_state(dry_run)
        output_dir = output_dir or settings.reports.directory
        from tasks.source import open_source

        source = open_source(settings, input_paths)
        run_id = current_run_id()
        ctx = prepare_context(settings, db, source, run_id, dry_run=dry_run, read_ahead=True,
                              input_paths=input_paths, started=started)
    except BaseException:
        if started is not None:
            started.stop()
        raise
    try:
        if reading:  # (already started, or) the read-ahead processes start while the source is checked
            ctx.start_reading()
        steps.check_source(source)  # before anything is read: a wrong cluster fails at once, with one request
    except BaseException:
        ctx.close()
        raise
    params = {"days": [d.isoformat() for d in day_list], "dry_run": dry_run, "publish": publish}
    record_run_start(db, run_id, "backfill", params, dry_run)
    summary = {"days_processed": 0, "successful_days": [], "failed_days": [], "events": 0, "problems_new": 0,
               "peaks": 0, "incidents": 0, "saved_rows": 0, "reports": {}, "dry_run": dry_run}
    children = {}
    try:
        if fan_out and not dry_run and not count_only:
            from flows.fanout import count_days_in_children

            children = count_days_in_children(day_list, fan_out, input_paths=input_paths, output_dir=output_dir)
        if not dry_run and not count_only:
            from tasks.reports.writer import import_in_background

            import_in_background()
        total_windows = sum(len(windows_between(day_window(d).start, day_window(d).end)) for d in day_list)
        with progress(f"backfill {day_list[0]} → {day_list[-1]}", total_windows) as advance:
            for day in day_list:
                window = day_window(day)
                try:
                    if children.get(day.isoformat(), "Completed") != "Completed":
                        raise RuntimeError(f"its count run ended {children[day.isoformat()]}")
                    if children:
                        from flows.fanout import judge_days

                        outcomes = judge_days(ctx, windows_between(window.start, window.end), advance)
                    else:
                        outcomes = steps.analyse_windows(ctx, windows_between(window.start, window.end), "backfill",
                                                         None, advance, judge=not count_only)
                        if day == day_list[-1]:
                            ctx.stop_reading()
                except Exception as exc:
                    log.error("backfill of %s failed: %s", day, exc)
                    summary["failed_days"].append(day.isoformat())
                    continue
                summary["days_processed"] += 1
                summary["successful_days"].append(day.isoformat())
                summary["events"] += sum(o.events for o in outcomes)
                summary["problems_new"] += sum(o.new_problems for o in outcomes)
                summary["peaks"] += sum(o.peaks for o in outcomes)
                summary["incidents"] += sum(1 for o in outcomes for p in o.peak_rows if p.severity in {"critical", "high"})
                summary["saved_rows"] += sum(o.problems for o in outcomes)
                if count_only:
                    continue
                if dry_run:
                    tell(f"[dry run] {day}: would store {sum(o.events for o in outcomes)} events in "
                          f"{len(outcomes)} windows and write the day's reports to {output_dir}")
                else:
                    with ctx.times.stage("reports"):
                        files = steps.write_day_reports(db, day, output_dir, run_id)
                    summary["reports"][day.isoformat()] = files
                    if "files_error" in files:
                        summary.setdefault("warnings", []).append(files["files_error"])
                        tell(f"warning: {files['files_error']}")
    finally:
        ctx.close()
    summary["stage_seconds"] = ctx.times.rounded()
    if ctx.read_ahead is not None and ctx.read_ahead.peak_rss_mib:
        summary["read_ahead_rss_mib"] = round(ctx.read_ahead.peak_rss_mib)  # the pod's memory holds both processes
    summary["duration_s"] = round(time.monotonic() - began, 1)
    if count_only:
        record_run_end(db, run_id, "failed" if summary["failed_days"] else "completed", summary, None, dry_run)
        if summary["failed_days"]:
            raise BackfillFailed(f"counting failed on {', '.join(summary['failed_days'])}")
        return summary
    if summary["successful_days"] and not dry_run:
        steps.deliver_outbox(settings, db)
        summary["pruned"] = _prune(db, settings.analysis.retention_days)
    if publish and summary["successful_days"]:
        from flows.publish import publish as publish_flow

        last_day = date.fromisoformat(summary["successful_days"][-1])
        state = publish_flow(day=last_day, dry_run=dry_run, output_dir=output_dir, return_state=True)
        summary["publish"] = "completed" if state.is_completed() else f"failed: {state.message}"
        if not state.is_completed():
            log.warning("publishing failed (the backfill itself succeeded): %s", state.message)
    from flows.artifacts import leave_artifacts

    leave_artifacts("backfill", summary)
    outcome = "failed" if summary["failed_days"] else "completed"
    record_run_end(db, run_id, outcome, summary, None, dry_run)
    push_metrics(settings, "backfill", outcome, summary["duration_s"], summary)
    if summary["failed_days"]:
        days_txt = ", ".join(summary["failed_days"])
        raise BackfillFailed(f"backfill failed on {days_txt}; fix the cause and re-run with "
                             f"`ailog backfill --start {summary['failed_days'][0]} --end {summary['failed_days'][-1]}`")
    tell(f"backfill completed: {summary['days_processed']} day(s), {summary['events']} events, "
          f"{summary['peaks']} peaks in {summary['duration_s']} s")
    return summary
