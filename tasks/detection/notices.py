"""Follow-up Teams messages of detection besides alerts: "recovered" notes and the late summary."""

from __future__ import annotations

import psycopg

from tasks.detection.live import late_summary_key


def queue_recovered(conn: psycopg.Connection, settings, recovered: list[dict], mode: str) -> int:
    """One "recovered" note per alerted incident that went quiet (keyed on the incident: never twice).
    Backfill replays history and says nothing."""
    from tasks.outbox import enqueue_teams
    from tasks.publish.teams import messages

    if mode == "backfill" or not settings.analysis.recovered_messages:
        return 0
    return sum(1 for incident in recovered
               if enqueue_teams(conn, settings, f"recovered:{incident['incident_id']}", "recovered",
                                messages.recovered(incident)))


def queue_late_summary(db, settings, missed: list[dict]) -> bool:
    """The critical peaks of windows judged too late to alert alone, in one message per run."""
    from tasks.outbox import enqueue_teams
    from tasks.publish.teams import messages

    if not missed:
        return False
    with db.connect() as conn:
        queued = enqueue_teams(conn, settings, late_summary_key(missed), "late_summary", messages.late_summary(missed))
        conn.commit()
    return queued
