"""Watermarks: the end of the last window a job has fully processed, advanced with the window's data."""

from __future__ import annotations

from datetime import datetime

import psycopg


def read_watermark(conn: psycopg.Connection, name: str) -> datetime | None:
    row = conn.execute("SELECT value FROM watermarks WHERE name = %s", (name,)).fetchone()
    return row[0] if row else None


def advance_watermark(conn: psycopg.Connection, name: str, value: datetime, run_id: str | None = None) -> None:
    """Move the watermark forward only (a re-run of an old window never moves it back)."""
    conn.execute(
        "INSERT INTO watermarks (name, value, run_id, updated_at) VALUES (%s, %s, %s, now())"
        " ON CONFLICT (name) DO UPDATE SET value = GREATEST(watermarks.value, EXCLUDED.value),"
        " run_id = EXCLUDED.run_id, updated_at = now()",
        (name, value, run_id),
    )
