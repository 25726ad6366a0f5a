"""Outbox: every message is stored in PostgreSQL first (in the transaction of the data it reports), then
delivered. Delivery claims a row and commits *before* sending, marks it sent after; a crash between send and
commit leaves it `sending`, and after a lease it is sent again with the same idempotency key (at-least-once; the
key lets a receiver drop the duplicate).

Failures are judged per message, against a time budget rather than a number of attempts, so a day-long outage
delays messages instead of dead-lettering them:
- a payload the endpoint refuses (400, 404, 410, 413) is dead at once, and the batch goes on with the next one;
- refused credentials (401, 403) and transient failures (429, 5xx, timeouts) keep the message queued with an
  exponential backoff; after a few failures in a row the endpoint is considered down and the batch stops;
- a message still undelivered when its budget (TEAMS_RETRY_BUDGET_HOURS since it was queued) runs out is dead;
- alerts still queued after TEAMS_ALERT_STALE_MINUTES are no longer news: they expire into one digest message
  instead of flooding the channel after a recovery.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from datetime import timedelta

import orjson
import psycopg

from core.redact import redact, redact_value

log = logging.getLogger("ailog.outbox")
LEASE = timedelta(minutes=10)


@dataclass
class DeliveryReport:
    sent: int = 0
    failed: int = 0
    pending: int = 0
    dead: int = 0
    dead_total: int = 0  # dead messages in the table, for the gauge
    expired: int = 0  # stale alerts folded into a digest
    warnings: list[str] = field(default_factory=list)
    previews: list[dict] = field(default_factory=list)


def notifications_enabled(settings) -> bool:
    """TEAMS_ENABLED=false queues nothing and sends nothing; no webhook URL means nothing to send to."""
    return bool(settings.teams.enabled and settings.teams.webhook_url is not None)


def enqueue(conn: psycopg.Connection, *, key: str, channel: str, kind: str, payload: dict) -> bool:
    """Queue a message in the caller's transaction; False when this key was queued before."""
    cur = conn.execute("INSERT INTO outbox (idempotency_key, channel, kind, payload) VALUES (%s, %s, %s, %s)"
                       " ON CONFLICT (idempotency_key) DO NOTHING",
                       (key, channel, kind, orjson.dumps(redact_value(payload)).decode()))
    return cur.rowcount == 1


def enqueue_teams(conn: psycopg.Connection, settings, key: str, kind: str, message: dict) -> bool:
    if not notifications_enabled(settings):
        return False
    return enqueue(conn, key=key, channel="teams", kind=kind, payload=message)


@dataclass(frozen=True)
class RetryPolicy:
    """How long a message may wait, and how retries are spaced."""

    budget: timedelta = timedelta(hours=24)
    alert_stale_after: timedelta = timedelta(hours=2)
    backoff_base: timedelta = timedelta(minutes=1)
    backoff_cap: timedelta = timedelta(minutes=30)
    failures_before_stop: int = 2

    @classmethod
    def from_settings(cls, teams) -> RetryPolicy:
        return cls(budget=timedelta(hours=teams.retry_budget_hours),
                   alert_stale_after=timedelta(minutes=teams.alert_stale_minutes))

    def backoff(self, attempts: int) -> timedelta:
        return min(self.backoff_base * 2 ** max(attempts - 1, 0), self.backoff_cap)


PAYLOAD_REFUSED = {400, 404, 410, 413, 422}
CREDENTIALS_REFUSED = {401, 403}


def deliver_pending(db, senders: dict, *, dry_run: bool = False, limit: int = 50,
                    policy: RetryPolicy | None = None) -> DeliveryReport:
    """Deliver due messages oldest first; each failure is judged for its own message (module docstring)."""
    policy = policy or RetryPolicy()
    report = DeliveryReport()
    with db.connect() as conn:
        if dry_run:
            rows = conn.execute("SELECT idempotency_key, channel, payload FROM outbox WHERE status IN ('pending','sending')"
                                " ORDER BY id LIMIT %s", (limit,)).fetchall()
            report.previews = [{"key": k, "channel": c, "payload": p} for k, c, p in rows]
            report.pending = len(rows)
            return report
        report.expired = expire_stale_alerts(conn, policy.alert_stale_after)
        failures_in_a_row = 0
        while report.sent + report.failed + report.dead < limit:
            row = _claim(conn)
            if row is None:
                break
            row_id, key, channel, payload, attempts, created_at, now = row
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
                status = _status(exc)
                error = redact(str(exc))[:500]
                refused = status in PAYLOAD_REFUSED or (bool(getattr(exc, "permanent", False))
                                                         and status not in CREDENTIALS_REFUSED)
                retry_at = now + policy.backoff(attempts)
                out_of_budget = retry_at > created_at + policy.budget
                dead = refused or out_of_budget
                conn.execute("UPDATE outbox SET status = %s, last_error = %s, next_attempt_at = %s WHERE id = %s",
                             ("dead" if dead else "pending", error, retry_at, row_id))
                conn.commit()
                if dead:
                    report.dead += 1
                    why = "refused" if refused else f"undelivered within its {policy.budget} budget"
                    report.warnings.append(f"{key}: given up, {why} ({error})")
                if not refused:
                    failures_in_a_row += 1
                    if not dead:
                        report.failed += 1
                        report.warnings.append(f"{key}: will retry after {retry_at:%H:%M:%S}Z ({error})")
                    if status in CREDENTIALS_REFUSED or failures_in_a_row >= policy.failures_before_stop:
                        break  # the endpoint itself is failing: leave the rest for a later run
                continue
            failures_in_a_row = 0
            conn.execute("UPDATE outbox SET status = 'sent', sent_at = now(), last_error = NULL WHERE id = %s", (row_id,))
            conn.commit()
            report.sent += 1
        report.pending, report.dead_total = conn.execute(
            "SELECT count(*) FILTER (WHERE status IN ('pending', 'sending')), count(*) FILTER (WHERE status = 'dead')"
            " FROM outbox").fetchone()
    for w in report.warnings:
        log.warning("outbox: %s", w)
    return report


def expire_stale_alerts(conn: psycopg.Connection, stale_after: timedelta) -> int:
    """Alerts queued longer than `stale_after` become one digest message (queued in the same transaction)."""
    rows = conn.execute(
        "UPDATE outbox SET status = 'expired', last_error = 'stale: sent in a digest instead' WHERE id IN"
        " (SELECT id FROM outbox WHERE kind = 'alert' AND status = 'pending' AND created_at < now() - %s"
        " FOR UPDATE SKIP LOCKED) RETURNING id, idempotency_key, payload, created_at", (stale_after,)).fetchall()
    if rows:
        from tasks.outbox.digest import alert_digest

        rows.sort(key=lambda r: r[0])
        digest = alert_digest([(payload, created_at) for _id, _key, payload, created_at in rows])
        enqueue(conn, key=f"digest:{rows[0][1]}:{len(rows)}", channel="teams", kind="alert_digest", payload=digest)
        log.warning("outbox: %d stale alert(s) expired into one digest message", len(rows))
    conn.commit()
    return len(rows)


def _status(exc: Exception) -> int | None:
    status = getattr(exc, "status", None)
    return status if isinstance(status, int) else None


def _claim(conn: psycopg.Connection):
    """Take the oldest due message (or one stuck in `sending` past its lease) and commit the claim."""
    row = conn.execute(
        "UPDATE outbox SET status = 'sending', attempts = attempts + 1, next_attempt_at = now() + %s"
        " WHERE id = (SELECT id FROM outbox WHERE (status = 'pending' AND next_attempt_at <= now())"
        " OR (status = 'sending' AND next_attempt_at <= now()) ORDER BY id FOR UPDATE SKIP LOCKED LIMIT 1)"
        " RETURNING id, idempotency_key, channel, payload, attempts, created_at, now()", (LEASE,)).fetchone()
    conn.commit()
    return row
