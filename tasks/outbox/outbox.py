"""Outbox: every message is stored in PostgreSQL first (in the transaction of the data it reports), then
delivered. Delivery claims a row and commits *before* sending, marks it sent after; a failure leaves it pending
with a backoff; a crash between send and commit leaves it `sending`, and after a lease it is sent again with the
same idempotency key (at-least-once; the key lets a receiver drop the duplicate).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from datetime import timedelta

import orjson
import psycopg

from ailog.redact import redact

log = logging.getLogger("ailog.outbox")
LEASE = timedelta(minutes=10)


@dataclass
class DeliveryReport:
    sent: int = 0
    failed: int = 0
    pending: int = 0
    dead: int = 0
    warnings: list[str] = field(default_factory=list)
    previews: list[dict] = field(default_factory=list)


def notifications_enabled(settings) -> bool:
    """TEAMS_ENABLED=false queues nothing and sends nothing; no webhook URL means nothing to send to."""
    return bool(settings.teams.enabled and settings.teams.webhook_url is not None)


def enqueue(conn: psycopg.Connection, *, key: str, channel: str, kind: str, payload: dict) -> bool:
    """Queue a message in the caller's transaction; False when this key was queued before."""
    cur = conn.execute("INSERT INTO outbox (idempotency_key, channel, kind, payload) VALUES (%s, %s, %s, %s)"
                       " ON CONFLICT (idempotency_key) DO NOTHING",
                       (key, channel, kind, orjson.dumps(payload).decode()))
    return cur.rowcount == 1


def enqueue_teams(conn: psycopg.Connection, settings, key: str, kind: str, message: dict) -> bool:
    if not notifications_enabled(settings):
        return False
    return enqueue(conn, key=key, channel="teams", kind=kind, payload=message)


def deliver_pending(db, senders: dict, *, dry_run: bool = False, limit: int = 50, max_attempts: int = 10) -> DeliveryReport:
    """Deliver due messages oldest first; failures stay queued for the next run."""
    report = DeliveryReport()
    with db.connect() as conn:
        if dry_run:
            rows = conn.execute("SELECT idempotency_key, channel, payload FROM outbox WHERE status IN ('pending','sending')"
                                " ORDER BY id LIMIT %s", (limit,)).fetchall()
            report.previews = [{"key": k, "channel": c, "payload": p} for k, c, p in rows]
            report.pending = len(rows)
            return report
        while report.sent + report.failed + report.dead < limit:
            row = _claim(conn)
            if row is None:
                break
            row_id, key, channel, payload, attempts = row
            sender = senders.get(channel)
            if sender is None:
                conn.execute("UPDATE outbox SET status = 'pending', attempts = attempts - 1, next_attempt_at = now()"
                             " + interval '5 minutes', last_error = %s WHERE id = %s",
                             (f"no sender configured for {channel}", row_id))
                conn.commit()
                report.warnings.append(f"{key}: no {channel} sender configured; kept queued")
                break
            try:
                sender.send(payload, key)
            except Exception as exc:
                permanent = bool(getattr(exc, "permanent", False)) or attempts >= max_attempts
                error = redact(str(exc))[:500]
                # due again at once: the next run (any flow) is the backoff
                conn.execute("UPDATE outbox SET status = %s, last_error = %s, next_attempt_at = now() WHERE id = %s",
                             ("dead" if permanent else "pending", error, row_id))
                conn.commit()
                if permanent:
                    report.dead += 1
                    report.warnings.append(f"{key}: given up ({error})")
                else:
                    report.failed += 1
                    report.warnings.append(f"{key}: will retry on the next run ({error})")
                    break  # the endpoint is failing: leave the rest for the next run
                continue
            conn.execute("UPDATE outbox SET status = 'sent', sent_at = now(), last_error = NULL WHERE id = %s", (row_id,))
            conn.commit()
            report.sent += 1
        report.pending = conn.execute("SELECT count(*) FROM outbox WHERE status IN ('pending', 'sending')").fetchone()[0]
    for w in report.warnings:
        log.warning("outbox: %s", w)
    return report


def _claim(conn: psycopg.Connection):
    """Take the oldest due message (or one stuck in `sending` past its lease) and commit the claim."""
    row = conn.execute(
        "UPDATE outbox SET status = 'sending', attempts = attempts + 1, next_attempt_at = now() + %s"
        " WHERE id = (SELECT id FROM outbox WHERE (status = 'pending' AND next_attempt_at <= now())"
        " OR (status = 'sending' AND next_attempt_at <= now()) ORDER BY id FOR UPDATE SKIP LOCKED LIMIT 1)"
        " RETURNING id, idempotency_key, channel, payload, attempts", (LEASE,)).fetchone()
    conn.commit()
    return row
