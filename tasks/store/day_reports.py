"""The day's report kept in PostgreSQL, so a run in another pod (publish, re-publish) never needs a file that an
earlier pod wrote: pods keep nothing, and a report directory may not even be writable."""

from __future__ import annotations

from datetime import date

import orjson
import psycopg
from psycopg.types.json import Jsonb


def save_day_report(conn: psycopg.Connection, day: date, report: dict, run_id: str | None = None) -> None:
    """Store (or replace) the day's report in the caller's transaction."""
    conn.execute(
        "INSERT INTO day_reports (day, report, run_id) VALUES (%s, %s, %s)"
        " ON CONFLICT (day) DO UPDATE SET report = EXCLUDED.report, run_id = EXCLUDED.run_id, written_at = now()",
        (day, Jsonb(report, dumps=lambda obj: orjson.dumps(obj).decode()), run_id),
    )


def load_day_report(conn: psycopg.Connection, day: date) -> dict | None:
    row = conn.execute("SELECT report FROM day_reports WHERE day = %s", (day,)).fetchone()
    return row[0] if row else None
