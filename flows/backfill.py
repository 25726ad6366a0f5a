"""Backfill: whole past days, window by window through the shared analysis path, then reports and publish."""

from __future__ import annotations

import logging
import time
from datetime import date

from prefect import flow

from ailog.errors import AilogError
from ailog.ops.logging import configure_logging
from flows.analysis import day_window, prepare_context, windows_between
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
from flows.progress import progress
from tasks import steps

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


@flow(name="backfill", on_failure=[backfill_failed], log_prints=False, retries=0)
def backfill(days: int = 1, start: date | None = None, end: date | None = None, dry_run: bool = False,
             publish: bool = True, output_dir: str = "reports", input_paths: list[str] | None = None,
             fan_out: str | None = None, count_only: bool = False) -> dict:
    """Analyse whole UTC days (default: yesterday), write the reports and CSVs, then publish as a subflow.

    ``fan_out``: a deployment ("flow/deployment", or "self") to count each day in its own child run (pod);
    this run then judges every window in order, writes the reports and publishes (flows/fanout.py).
    ``count_only``: what such a child does — read, group and store the counts, nothing else."""
    began = time.monotonic()
    configure_logging("backfill")
    day_list = days_to_process(days if not (start or end) else None, parse_day(start, "start"),
                               parse_day(end, "end"), logical_today())
    settings, db = open_state(dry_run)
    from tasks.source import open_source

    source = open_source(settings, input_paths)
    steps.check_source(source)
    run_id = current_run_id()
    params = {"days": [d.isoformat() for d in day_list], "dry_run": dry_run, "publish": publish}
    record_run_start(db, run_id, "backfill", params, dry_run)
    ctx = prepare_context(settings, db, source, run_id, dry_run=dry_run)
    summary = {"days_processed": 0, "successful_days": [], "failed_days": [], "events": 0, "problems_new": 0,
               "peaks": 0, "incidents": 0, "saved_rows": 0, "reports": {}, "dry_run": dry_run}
    children = {}
    try:
        if fan_out and not dry_run and not count_only:
            from flows.fanout import count_days_in_children

            children = count_days_in_children(day_list, fan_out, input_paths=input_paths, output_dir=output_dir)
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
                        summary["reports"][day.isoformat()] = steps.write_day_reports(db, day, output_dir)
    finally:
        ctx.close()
    summary["stage_seconds"] = ctx.times.rounded()
    summary["duration_s"] = round(time.monotonic() - began, 1)
    if count_only:
        record_run_end(db, run_id, "failed" if summary["failed_days"] else "completed", summary, None, dry_run)
        if summary["failed_days"]:
            raise BackfillFailed(f"counting failed on {', '.join(summary['failed_days'])}")
        return summary
    if summary["successful_days"] and not dry_run:
        summary["pruned"] = _prune(db, settings.analysis.retention_days)
        steps.deliver_outbox(settings, db)
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
