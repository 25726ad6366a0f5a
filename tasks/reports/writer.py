"""Everything a finished day (or window) writes to --output, composed from the report modules."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from pathlib import Path

from ailog.db import Database


def export_tables(db: Database, day: date, output_dir: str) -> dict:
    """The two registry CSVs (and their dated copies)."""
    from tasks.reports.csv_export import write_errors_table, write_peaks_table

    with db.connect() as conn:
        errors = write_errors_table(conn, output_dir, day)
        peaks = write_peaks_table(conn, output_dir, day)
    return {"errors_table": str(errors), "peaks_table": str(peaks)}


def write_day_reports(db: Database, day: date, output_dir: str) -> dict:
    """Registry statuses for the day's end, the report JSON, charts, Markdown report and CSVs."""
    from tasks.registries.known_errors import update_statuses
    from tasks.reports.charts import render_charts
    from tasks.reports.daily_report import build_daily_report, write_report
    from tasks.reports.markdown import write_markdown

    Path(output_dir).mkdir(parents=True, exist_ok=True)
    end_of_day = datetime(day.year, day.month, day.day, tzinfo=UTC) + timedelta(days=1)
    with db.connect() as conn:
        update_statuses(conn, end_of_day)
        conn.commit()
        report = build_daily_report(conn, day)
        render_charts(report, conn, output_dir)
    paths = {"report": str(write_report(report, output_dir)), "markdown": str(write_markdown(report, output_dir))}
    paths.update(export_tables(db, day, output_dir))
    return paths
