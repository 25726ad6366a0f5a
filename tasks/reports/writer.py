"""Everything a finished day (or window) writes: the report into PostgreSQL (what later runs read), and the files
people keep (report JSON, Markdown, charts, CSVs) into the reports directory.

Files are secondary: in a pod they land in a scratch directory that dies with it. A directory that cannot be
written is reported, never a reason to lose the day's data or hold back an alert.
"""

from __future__ import annotations

import logging
import threading
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

from core.db import Database

log = logging.getLogger("ailog.reports")


def import_in_background() -> None:
    """The libraries the day's files need (matplotlib, pandas: about 0.6 s of imports), imported by a thread while
    a backfill analyses its windows rather than after the last one, when nothing else is left to run beside them."""
    def load() -> None:
        try:
            from tasks.reports import charts, csv_export  # noqa: F401

            charts._plt()
        except Exception:  # noqa: S110 - imported again, and failing loudly, when the files are written
            pass

    threading.Thread(target=load, name="ailog-report-imports", daemon=True).start()


def export_tables(db: Database, day: date, output_dir: str | Path) -> dict:
    """The two registry CSVs (and their dated copies)."""
    from tasks.reports.csv_export import write_errors_table, write_peaks_table

    with db.connect() as conn:
        errors = write_errors_table(conn, output_dir, day)
        peaks = write_peaks_table(conn, output_dir, day)
    return {"errors_table": str(errors), "peaks_table": str(peaks)}


def unwritable(output_dir: str | Path, exc: OSError) -> dict:
    """A reports directory that cannot be written: logged and returned, never raised (the data is in PostgreSQL)."""
    reason = (f"cannot write the reports to {output_dir}: {exc.strerror or exc} — set AILOG_REPORTS_DIR (or --output)"
              " to a writable directory; the data is safe in PostgreSQL")
    log.warning(reason)
    return {"files_error": reason}


def write_day_files(db: Database, report: dict, output_dir: str | Path) -> dict:
    """Charts, report JSON, Markdown and CSVs of one day from the stored data; failures are returned, not raised."""
    from tasks.reports.charts import render_charts
    from tasks.reports.daily_report import write_report
    from tasks.reports.markdown import write_markdown

    day = date.fromisoformat(report["date"])
    try:
        Path(output_dir).mkdir(parents=True, exist_ok=True)
        with db.connect() as conn:
            render_charts(report, conn, output_dir)
        paths = {"report": str(write_report(report, output_dir)), "markdown": str(write_markdown(report, output_dir))}
        paths.update(export_tables(db, day, output_dir))
        return paths
    except OSError as exc:
        return unwritable(output_dir, exc)


def build_day_report(db: Database, day: date) -> dict:
    """Registry statuses as of the day's end, then the day's report from the stored tables."""
    from tasks.registries.known_errors import update_statuses
    from tasks.reports.daily_report import build_daily_report

    end_of_day = datetime(day.year, day.month, day.day, tzinfo=UTC) + timedelta(days=1)
    with db.connect() as conn:
        update_statuses(conn, end_of_day)
        report = build_daily_report(conn, day)
        conn.commit()
    return report


def store_day_report(db: Database, report: dict, run_id: str | None = None) -> None:
    from tasks.store import save_day_report

    with db.connect() as conn:
        save_day_report(conn, date.fromisoformat(report["date"]), report, run_id)
        conn.commit()


def write_day_reports(db: Database, day: date, output_dir: str | Path, run_id: str | None = None) -> dict:
    """The day's report, its files (charts fill in report["charts"]), then the report stored in PostgreSQL."""
    report = build_day_report(db, day)
    paths = write_day_files(db, report, output_dir)
    store_day_report(db, report, run_id)
    return paths


def stored_day_report(db: Database, day: date, *, dry_run: bool) -> dict:
    """The day's report as the backfill stored it; built from the tables (and stored, unless a dry run) when absent."""
    from tasks.reports.daily_report import build_daily_report
    from tasks.store import load_day_report

    with db.connect() as conn:
        report = load_day_report(conn, day)
        if report is not None:
            return report
        if dry_run:
            return build_daily_report(conn, day)
    report = build_day_report(db, day)
    store_day_report(db, report)
    return report
