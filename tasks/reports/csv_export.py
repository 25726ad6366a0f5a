"""CSV exports: `errors_table_latest.csv` and `peaks_table_latest.csv` (CONTRACTS.md columns first), plus
dated copies. Stable ordering, RFC 4180 quoting, ISO-8601 UTC with Z, `true`/`false`.

Spreadsheet formula injection: a text cell starting with `=`, `+`, `-`, `@`, tab or CR gets a leading `'`
(OWASP's advice), so Excel/LibreOffice show it as text instead of running it; strip that one character to get
the raw value back. Log messages are attacker-controlled, so this is applied to every text cell.
"""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import orjson
import pandas as pd
import psycopg

from tasks.models import iso_z

ERRORS_COLUMNS = ["problem_id", "template", "error_type", "apps", "first_seen", "last_seen", "count_total",
                  "count_last_day", "status", "severity", "sample_message",
                  "title", "muted", "muted_by", "muted_reason", "ticket", "note", "sample_trace_id"]
PEAKS_COLUMNS = ["peak_id", "problem_id", "template", "app", "kind", "start", "end", "count", "baseline", "ratio",
                 "severity", "known", "alerted", "explanation", "incident_id", "known_peak_id"]
DANGEROUS = ("=", "+", "-", "@", "\t", "\r")


def cell(value) -> str:
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, datetime):
        return iso_z(value)
    if isinstance(value, float):
        return f"{value:.2f}"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, list | tuple):
        value = ";".join(str(v) for v in value)
    if isinstance(value, dict):
        value = orjson.dumps(value, option=orjson.OPT_SORT_KEYS).decode()
    text = str(value).replace("\x00", "")
    return "'" + text if text.startswith(DANGEROUS) else text


def render_csv(columns: list[str], rows: list[list]) -> bytes:
    """RFC 4180 (CRLF, minimal quoting); every cell formatted by `cell` first, so pandas never guesses a type."""
    table = pd.DataFrame(rows, columns=columns, dtype=object).map(cell)
    return table.to_csv(index=False, lineterminator="\r\n").encode("utf-8")


def errors_rows(conn: psycopg.Connection, day: date) -> list[list]:
    end = datetime(day.year, day.month, day.day, tzinfo=UTC) + timedelta(days=1)
    last_day = dict(conn.execute(
        "SELECT problem_id, sum(count)::bigint FROM window_totals WHERE window_start >= %s AND window_start < %s"
        " GROUP BY 1",
        (end - timedelta(days=1), end)).fetchall())
    rows = conn.execute(
        "SELECT problem_id, template, error_type, apps, first_seen, last_seen, count_total, status, severity,"
        " sample_message, title, muted, muted_by, muted_reason, ticket, note, sample_trace_id FROM problems"
        " ORDER BY count_total DESC, problem_id").fetchall()
    return [[r[0], r[1], r[2], sorted(r[3] or []), r[4], r[5], r[6], last_day.get(r[0], 0), r[7], r[8],
             (r[9] or "")[:2000], r[10], r[11], r[12], r[13], r[14], r[15], r[16]] for r in rows]


def peaks_rows(conn: psycopg.Connection, day: date, *, days: int = 30) -> list[list]:
    end = datetime(day.year, day.month, day.day, tzinfo=UTC) + timedelta(days=1)
    rows = conn.execute(
        "SELECT p.peak_id, p.problem_id, coalesce(pr.template, ''), p.app, p.kind, p.start_ts, p.end_ts, p.count,"
        " p.baseline, p.ratio, p.severity, p.known, p.alerted, p.explanation, p.incident_id, p.known_peak_id"
        " FROM peaks p LEFT JOIN problems pr USING (problem_id) WHERE p.start_ts >= %s AND p.start_ts < %s"
        " ORDER BY p.start_ts DESC, p.peak_id", (end - timedelta(days=days), end)).fetchall()
    return [list(r[:13]) + [orjson.dumps(r[13]).decode() if r[13] else "", r[14], r[15]] for r in rows]


def write_errors_table(conn: psycopg.Connection, output_dir: Path | str, day: date) -> Path:
    return _write_pair(Path(output_dir), "errors_table", day, render_csv(ERRORS_COLUMNS, errors_rows(conn, day)))


def write_peaks_table(conn: psycopg.Connection, output_dir: Path | str, day: date) -> Path:
    return _write_pair(Path(output_dir), "peaks_table", day, render_csv(PEAKS_COLUMNS, peaks_rows(conn, day)))


def _write_pair(out: Path, stem: str, day: date, data: bytes) -> Path:
    from tasks.reports.daily_report import _write_if_changed

    out.mkdir(parents=True, exist_ok=True)
    latest = out / f"{stem}_latest.csv"
    _write_if_changed(latest, data)
    _write_if_changed(out / f"{stem}_{day.isoformat()}.csv", data)
    return latest
