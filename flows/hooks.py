"""Failure hooks: "Backfill failed on DATE" / "Regular phase failed" go to Teams through the outbox.

The message is queued in PostgreSQL first (so it is not lost when Teams is down: the next run delivers it),
then delivered at once. When the database itself is the failure, it is sent directly instead.
Hooks cannot see infrastructure deaths (OOM, eviction): Prefect automations cover those (ailog/ops).
"""

from __future__ import annotations

import logging
from datetime import UTC, date, datetime, timedelta

from core.redact import redact

log = logging.getLogger("ailog.flows.hooks")


def _error_text(state) -> str:
    message = getattr(state, "message", None) or "unknown error"
    return redact(str(message))[:1000]


def notify_failure(kind: str, key: str, message: dict) -> None:
    """Queue and deliver a failure notification; never raises (a hook must not mask the real failure)."""
    try:
        from blocks.settings import load_settings
        from tasks.outbox import deliver_pending, enqueue_teams, notifications_enabled
        from tasks.publish.teams.sender import TeamsSender

        settings = load_settings()
        if not notifications_enabled(settings):
            return
        sender = TeamsSender(settings.teams)
        try:
            from core.db import open_database

            db = open_database(settings)
            with db.connect() as conn:
                enqueue_teams(conn, settings, key, kind, message)
                conn.commit()
            deliver_pending(db, {"teams": sender})
        except Exception as exc:  # the database may be the failure: send directly
            log.warning("could not queue the %s notification (%s); sending it directly", kind, type(exc).__name__)
            sender.send(message, key)
    except Exception as exc:
        log.warning("could not send the %s notification: %s", kind, redact(str(exc))[:300])


def backfill_failed(flow, flow_run, state) -> None:
    from tasks.publish.teams import messages

    params = dict(getattr(flow_run, "parameters", {}) or {})
    day = params.get("day") or params.get("end") or params.get("start")
    if not day:
        days = int(params.get("days") or 1)
        day = (datetime.now(UTC).date() - timedelta(days=days)).isoformat()
        if days > 1:
            day = f"{day} … {(datetime.now(UTC).date() - timedelta(days=1)).isoformat()}"
    day = day.isoformat() if isinstance(day, date) else str(day)
    notify_failure("backfill_failed", f"backfill_failed:{flow_run.id}", messages.backfill_failed(day, _error_text(state)))


def regular_failed(flow, flow_run, state) -> None:
    from tasks.publish.teams import messages

    when = datetime.now(UTC).replace(second=0, microsecond=0).isoformat().replace("+00:00", "Z")
    notify_failure("regular_failed", f"regular_failed:{flow_run.id}", messages.regular_failed(when, _error_text(state)))
