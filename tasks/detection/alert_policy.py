"""Who gets woken: one alert per incident, re-alert only when much worse or after a cooldown.

Incidents are keyed by (problem, app) — or the cascade — and remember the last window applied, so re-running a
window produces the same alert key again (the outbox de-duplicates it) instead of a second alert.
"""

from __future__ import annotations

import hashlib
from dataclasses import asdict, dataclass, field
from datetime import datetime, timedelta

import psycopg
from orjson import dumps

from tasks.models import Peak, iso_z


@dataclass
class Alert:
    incident_id: str
    alert_number: int
    problem_id: str
    template: str
    kind: str
    severity: str
    count: int
    baseline: float
    ratio: float
    apps: list[str]
    pods: list[str]
    explanation: list[dict]
    explanation_text: str
    first_seen: str | None
    sample_message: str
    events_since_last_alert: int
    window: str
    reasons: list[str] = field(default_factory=list)
    members: list[dict] = field(default_factory=list)
    late_minutes: int = 0  # judged after its time (a failed/late run, late logs): how late the alert is

    @property
    def idempotency_key(self) -> str:
        return f"alert:{self.incident_id}:{self.alert_number}"

    def to_dict(self) -> dict:
        d = asdict(self)
        d["idempotency_key"] = self.idempotency_key
        return d


def incident_id_for(problem_id: str, app: str, opened: datetime) -> str:
    return "I" + hashlib.sha1(f"{problem_id}|{app}|{opened.isoformat()}".encode()).hexdigest()[:15]


def apply_policy(conn: psycopg.Connection, peak: Peak, window_start: datetime, window_end: datetime, *,
                 alertable: bool, cooldown: timedelta, worse_factor: float, quiet: timedelta) -> tuple[int, int] | None:
    """Attach the peak to its incident; return (alert number, events since the last alert) when it alerts.

    The incident is the one that was active at this window's time (open, or closed after it), so re-running
    an old window finds the incident it belonged to instead of opening a second one."""
    row = conn.execute(
        "SELECT incident_id, last_window_start, last_alert_at, last_alert_count, last_alert_rate, events_total,"
        " alerts_sent, last_alert_window, opened_at FROM incidents WHERE problem_id = %s AND app = %s"
        " AND opened_at < %s AND (closed_at IS NULL OR closed_at >= %s) ORDER BY opened_at DESC LIMIT 1",
        (peak.problem_id, peak.app, window_end, window_start - quiet)).fetchone()
    if row is None:
        incident_id = incident_id_for(peak.problem_id, peak.app, window_start)
        conn.execute(
            "INSERT INTO incidents (incident_id, problem_id, app, kind, opened_at, last_seen_at, events_total,"
            " severity, last_window_start) VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s)"
            " ON CONFLICT (incident_id) DO NOTHING",
            (incident_id, peak.problem_id, peak.app, peak.kind, peak.start, window_end, peak.count, peak.severity,
             window_start))
        peak.incident_id = incident_id
        if not alertable:
            return None
        return _record_alert(conn, incident_id, 1, peak, window_start, peak.count, 0)
    incident_id, last_window, last_alert_at, last_alert_count, last_rate, total, sent, last_alert_window, _ = row
    peak.incident_id = incident_id
    if last_window is not None and window_start <= last_window:
        # a re-run of a window already applied: repeat its alert (same key), count nothing twice
        if last_alert_window == window_start:
            return sent, 0
        if alertable and not sent:  # late events made a known rise critical: alert it now, once
            return _record_alert(conn, incident_id, 1, peak, window_start, total, 0)
        return None
    total += peak.count
    conn.execute("UPDATE incidents SET last_seen_at = %s, events_total = %s, last_window_start = %s,"
                 " severity = CASE WHEN %s = 'critical' THEN 'critical' ELSE severity END WHERE incident_id = %s",
                 (window_end, total, window_start, peak.severity, incident_id))
    if not alertable:
        return None
    rate = float(peak.count)
    due = last_alert_at is None or window_start - last_alert_at >= cooldown or (last_rate and rate >= worse_factor * last_rate)
    if not due:
        return None
    return _record_alert(conn, incident_id, sent + 1, peak, window_start, total, last_alert_count)


def _record_alert(conn, incident_id: str, number: int, peak: Peak, window_start: datetime, total: int,
                  last_alert_count: int) -> tuple[int, int]:
    conn.execute("UPDATE incidents SET last_alert_at = %s, last_alert_count = %s, last_alert_rate = %s,"
                 " alerts_sent = %s, last_alert_window = %s, last_alert_key = %s WHERE incident_id = %s",
                 (window_start, total, float(peak.count), number, window_start, f"alert:{incident_id}:{number}",
                  incident_id))
    return number, total - last_alert_count


def related_alerted(conn: psycopg.Connection, key: tuple[str, str], apps: set[str], window_start: datetime,
                    window_end: datetime, quiet: timedelta) -> tuple[str, float] | None:
    """Another incident, already alerted and still rising in this window or the one just before (or after,
    when an earlier window is re-judged), that covers one of these applications (itself, or as a member of
    its group/cascade): the same failure seen under another problem id or grouping. An incident of the same
    application that went quiet earlier is a different one. Returns (incident id, last alert rate)."""
    step = window_end - window_start
    rows = conn.execute(
        "SELECT incident_id, problem_id, app, members, last_alert_rate FROM incidents WHERE alerts_sent > 0"
        " AND last_seen_at >= %s AND opened_at < %s AND (closed_at IS NULL OR closed_at >= %s)",
        (window_start - step, window_end + step, window_start - quiet)).fetchall()
    best = None
    for incident_id, problem_id, app, members, rate in rows:
        if (problem_id, app) == key:
            continue  # its own incident: apply_policy decides
        covered = {app} | {m.get("app") for m in members or []}
        if covered & apps and (best is None or rate > best[1]):
            best = (incident_id, float(rate or 0.0))
    return best


def extend_incident(conn: psycopg.Connection, incident_id: str, window_end: datetime) -> None:
    """The incident is still going under another problem id: it stays active (and cannot be told twice)."""
    conn.execute("UPDATE incidents SET last_seen_at = greatest(last_seen_at, %s) WHERE incident_id = %s",
                 (window_end, incident_id))


def remember_members(conn: psycopg.Connection, incident_id: str, members: list[dict]) -> None:
    """A group/cascade incident keeps every (problem, app) it grouped, so a later lone member is recognised."""
    pairs = sorted({(m["problem_id"], m["app"]) for m in members})
    conn.execute(
        "UPDATE incidents SET members = (SELECT coalesce(jsonb_agg(DISTINCT x), '[]'::jsonb) FROM"
        " jsonb_array_elements(members || %s::jsonb) x) WHERE incident_id = %s",
        (dumps([{"problem_id": p, "app": a} for p, a in pairs]).decode(), incident_id))


def close_quiet_incidents(conn: psycopg.Connection, window_start: datetime, quiet: timedelta) -> list[dict]:
    """Close incidents quiet for the closing period; returns the alerted ones (they get a "recovered" note)."""
    rows = conn.execute(
        "UPDATE incidents SET closed_at = last_seen_at WHERE closed_at IS NULL AND last_seen_at < %s"
        " RETURNING incident_id, problem_id, app, kind, opened_at, last_seen_at, events_total, alerts_sent, members",
        (window_start - quiet,)).fetchall()
    return [{"incident_id": r[0], "problem_id": r[1], "app": r[2], "kind": r[3], "opened_at": iso_z(r[4]),
             "last_seen_at": iso_z(r[5]), "events_total": r[6], "alerts_sent": r[7], "members": r[8] or []}
            for r in rows if r[7]]


def window_label(start: datetime, end: datetime) -> str:
    return f"{iso_z(start)}/{iso_z(end)}"
