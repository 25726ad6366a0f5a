"""Runs of the flows, recorded for the reports, metrics and the runbook."""

from __future__ import annotations

import psycopg
from orjson import OPT_NON_STR_KEYS, dumps

from core.redact import redact


def start_run(conn: psycopg.Connection, run_id: str, flow: str, params: dict) -> None:
    conn.execute(
        "INSERT INTO runs (run_id, flow, params) VALUES (%s, %s, %s)"
        " ON CONFLICT (run_id) DO UPDATE SET started_at = now(), status = 'running', params = EXCLUDED.params",
        (run_id, flow, dumps(params, default=str, option=OPT_NON_STR_KEYS).decode()),
    )


def finish_run(conn: psycopg.Connection, run_id: str, status: str, summary: dict, error: str | None = None) -> None:
    conn.execute(
        "UPDATE runs SET finished_at = now(), status = %s, summary = %s, error = %s WHERE run_id = %s",
        (status, dumps(summary, default=str, option=OPT_NON_STR_KEYS).decode(), redact(error) if error else None, run_id),
    )
