"""The known-errors registry: one row per problem, recomputed from the stored counts (never incremented).

The stored counts' per-problem totals are kept by the database (migration 0011: triggers add every
window row written and subtract every row deleted), so a refresh costs one row per problem, not a scan of
its history; re-running a window replaces its contribution, it never adds it twice.

Status lifecycle: new (first seen within the last 24 h) → ongoing → resolved after N quiet days → regressed
when it comes back. People's edits (mute, acknowledge, title, note, ticket) are never touched by runs.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta

import psycopg

from core.errors import AilogError, ConfigError
from tasks.grouping.engine import display_template
from tasks.grouping.folding import fold_aliases
from tasks.store.copy_text import array_literal, array_of, clean, optional, text, timestamp, write_lines

SEVERITY_ORDER = "CASE severity WHEN 'critical' THEN 4 WHEN 'high' THEN 3 WHEN 'medium' THEN 2 WHEN 'low' THEN 1 ELSE 0 END"


_WINDOW = timedelta(minutes=15)
# Per problem: its running totals (migrations 0011 and 0013, kept by triggers on window_problem_samples) and its
# applications. The latest window before the one refreshed is kept too when that one is the latest; a re-run of
# an older window asks the index. Bounded by the problems refreshed, not by how many windows of them are stored.
_PROBLEM_STATE = (
    "SELECT t.problem_id, t.first_seen, t.last_seen, t.events,"
    " ARRAY(SELECT a.app FROM problem_app_windows a WHERE a.problem_id = t.problem_id AND a.windows > 0 ORDER BY a.app),"
    " CASE WHEN t.latest_window < %(start)s THEN t.latest_window WHEN t.latest_window = %(start)s THEN t.previous_window"
    " ELSE (SELECT max(s.window_start) FROM window_problem_samples s WHERE s.problem_id = t.problem_id"
    "  AND s.window_start < %(start)s) END"
    " FROM problem_totals t WHERE t.problem_id = ANY(%(ids)s::text[]) AND t.windows > 0")


# Every refreshed row in one statement, from a temporary table filled by COPY (text lines formatted in Python):
# one round trip per window instead of one per problem, and several times cheaper than array parameters. The
# sample (message, trace id, error type) is the latest window's, joined here: its text (about 2 MB a window of
# 3,000 problems) never travels to this process and back.
_COLUMNS = "problem_id, template, apps, first_seen, last_seen, count_total, status, severity"
_STAGE = ("CREATE TEMPORARY TABLE problem_refresh (problem_id text, template text, apps text[],"
          " first_seen timestamptz, last_seen timestamptz, count_total bigint, status text, severity text)"
          " ON COMMIT DROP")
_UPSERT = (
    f"INSERT INTO problems ({_COLUMNS}, error_type, sample_message, sample_trace_id)"  # noqa: S608 - fixed names
    f" SELECT {', '.join('r.' + c.strip() for c in _COLUMNS.split(','))}, l.error_type, l.sample_message,"
    " l.sample_trace_id FROM problem_refresh r JOIN problem_totals t ON t.problem_id = r.problem_id"
    " JOIN window_problem_samples l ON l.window_start = t.latest_window AND l.problem_id = r.problem_id"
    " ON CONFLICT (problem_id) DO UPDATE SET template = EXCLUDED.template,"
    " error_type = coalesce(EXCLUDED.error_type, problems.error_type), apps = EXCLUDED.apps,"
    " first_seen = LEAST(problems.first_seen, EXCLUDED.first_seen), last_seen = EXCLUDED.last_seen,"
    " count_total = problems.count_pruned + EXCLUDED.count_total, status = EXCLUDED.status,"
    " severity = EXCLUDED.severity, sample_message = EXCLUDED.sample_message,"
    " sample_trace_id = EXCLUDED.sample_trace_id, updated_at = now()")


def refresh_line(problem_id: str, template: str | None, apps: list[str], first: datetime | None,
                 last: datetime | None, total: int, status: str, severity: str | None) -> str:
    """A COPY text line of `_COLUMNS`, column by column (`tasks.store.copy_text`)."""
    return (f"{text(clean(problem_id))}\t{optional(template)}\t{array_of(tuple(sorted(apps)))}\t{timestamp(first)}\t"
            f"{timestamp(last)}\t{total}\t{text(clean(status))}\t{optional(severity)}\n")


def _upsert(conn: psycopg.Connection, lines: list[str]) -> None:
    """Write the refreshed rows, COPY text lines of `_COLUMNS` (the temporary table lives only inside this call)."""
    try:
        conn.execute(_STAGE)
    except psycopg.errors.InsufficientPrivilege:
        raise ConfigError(f"the database user may not create temporary tables, which the registry refresh needs:"
                          f" GRANT TEMPORARY ON DATABASE {conn.info.dbname} TO {conn.info.user}"
                          " (PostgreSQL's default)") from None
    with conn.cursor() as cur, cur.copy(f"COPY problem_refresh ({_COLUMNS}) FROM STDIN") as cp:
        write_lines(cp, lines)
    conn.execute(_UPSERT)
    conn.execute("DROP TABLE problem_refresh")


@dataclass
class RegistryChange:
    new: int = 0
    updated: int = 0
    folded: bool = False  # aliases were folded into their survivors: stored rows changed problem ids


def refresh_problems(conn: psycopg.Connection, problem_ids: Iterable[str], templates: dict[str, str], now: datetime,
                     *, resolve_after_days: int = 7) -> RegistryChange:
    """Upsert the registry rows of the given problems from window_counts/samples/peaks (idempotent).

    Problems merged into another one (aliases) are folded into it first, so no event is counted under both
    ids: the sum of `count_total` always equals the events stored (plus those pruned)."""
    survivors = fold_aliases(conn)
    ids = sorted(set(problem_ids) | survivors)
    change = RegistryChange(folded=bool(survivors))
    if not ids:
        return change
    id_array = array_literal(ids)
    existing = {r[0]: r[1] for r in conn.execute(
        "SELECT problem_id, status FROM problems WHERE problem_id = ANY(%s::text[])", (id_array,))}
    stats, previous_gap = {}, {}
    for pid, first, last, total, apps, before in conn.execute(_PROBLEM_STATE, {"start": now - _WINDOW, "ids": id_array}):
        stats[pid] = (first, last, total, apps)
        if before is not None:
            previous_gap[pid] = before
    severities = {r[0]: r[1] for r in conn.execute(
        f"SELECT DISTINCT ON (problem_id) problem_id, severity FROM peaks WHERE problem_id = ANY(%s::text[])"  # noqa: S608
        f" AND start_ts >= %s ORDER BY problem_id, {SEVERITY_ORDER} DESC", (id_array, now - timedelta(days=1)))}
    untold = [pid for pid in ids if not templates.get(pid)]  # the window's own templates are the newest
    stored_templates = dict(conn.execute(
        "SELECT problem_id, template FROM grouping_templates WHERE problem_id = ANY(%s::text[])",
        (array_literal(untold),)).fetchall()
    ) if untold else {}
    rows = []
    for pid in ids:
        if pid not in stats:
            continue
        first, last, total, apps = stats[pid]
        status = _status(existing.get(pid), first, last, previous_gap.get(pid), now, resolve_after_days)
        template = templates.get(pid) or display_template(stored_templates.get(pid) or "")
        rows.append(refresh_line(pid, template, apps, first, last, total, status, severities.get(pid)))
        if pid in existing:
            change.updated += 1
        else:
            change.new += 1
    if rows:
        _upsert(conn, rows)
    gone = [pid for pid in ids if pid in existing and pid not in stats]
    if gone:  # no stored window holds it any more (a re-run moved its events): only its pruned events remain
        conn.execute("UPDATE problems SET count_total = count_pruned, updated_at = now() WHERE problem_id = ANY(%s)"
                     " AND count_total <> count_pruned", (gone,))
    return change


def _status(previous: str | None, first: datetime, last: datetime, last_before: datetime | None, now: datetime,
            resolve_after_days: int) -> str:
    quiet = timedelta(days=resolve_after_days)
    if now - last >= quiet:
        return "resolved"
    if last_before is not None and (previous == "resolved" or (last - last_before) >= quiet):
        return "regressed" if now - last < timedelta(days=1) else "ongoing"
    if now - first < timedelta(days=1):
        return "new"
    if previous == "regressed" and now - last < timedelta(days=1):
        return "regressed"
    return "ongoing"


def update_statuses(conn: psycopg.Connection, now: datetime, *, resolve_after_days: int = 7) -> int:
    """Problems quiet for N days become resolved; new ones older than a day become ongoing."""
    cur = conn.execute("UPDATE problems SET status = 'resolved', updated_at = now() WHERE status <> 'resolved'"
                       " AND last_seen < %s", (now - timedelta(days=resolve_after_days),))
    n = cur.rowcount
    cur = conn.execute("UPDATE problems SET status = 'ongoing', updated_at = now() WHERE status IN ('new', 'regressed')"
                       " AND first_seen < %s AND last_seen >= %s AND last_seen < %s",
                       (now - timedelta(days=1), now - timedelta(days=resolve_after_days), now - timedelta(days=1)))
    return n + cur.rowcount


def resolve_id(conn: psycopg.Connection, problem_id: str) -> str:
    """Follow aliases; an unknown id is an error naming it."""
    seen = set()
    pid = problem_id
    while pid not in seen:
        seen.add(pid)
        row = conn.execute("SELECT problem_id FROM problem_aliases WHERE alias_id = %s", (pid,)).fetchone()
        if row is None:
            break
        pid = row[0]
    if not conn.execute("SELECT 1 FROM problems WHERE problem_id = %s", (pid,)).fetchone():
        raise AilogError(f"no problem with id {problem_id!r}; see `ailog problem list`")
    return pid


def mute(conn: psycopg.Connection, problem_id: str, by: str, reason: str | None) -> str:
    pid = resolve_id(conn, problem_id)
    conn.execute("UPDATE problems SET muted = true, muted_by = %s, muted_reason = %s, muted_at = now(),"
                 " updated_at = now() WHERE problem_id = %s", (by, reason, pid))
    return pid


def unmute(conn: psycopg.Connection, problem_id: str) -> str:
    pid = resolve_id(conn, problem_id)
    conn.execute("UPDATE problems SET muted = false, muted_by = NULL, muted_reason = NULL, muted_at = NULL,"
                 " updated_at = now() WHERE problem_id = %s", (pid,))
    return pid


def acknowledge(conn: psycopg.Connection, problem_id: str, by: str, reason: str | None = None) -> str:
    pid = resolve_id(conn, problem_id)
    conn.execute("UPDATE problems SET acknowledged_by = %s, acknowledged_at = now(),"
                 " note = coalesce(%s, note), updated_at = now() WHERE problem_id = %s", (by, reason, pid))
    return pid


def rename(conn: psycopg.Connection, problem_id: str, title: str) -> str:
    pid = resolve_id(conn, problem_id)
    conn.execute("UPDATE problems SET title = %s, updated_at = now() WHERE problem_id = %s", (title, pid))
    return pid


def annotate(conn: psycopg.Connection, problem_id: str, note: str | None = None, ticket: str | None = None) -> str:
    if note is None and ticket is None:
        raise AilogError("give --note and/or --ticket")
    pid = resolve_id(conn, problem_id)
    conn.execute("UPDATE problems SET note = coalesce(%s, note), ticket = coalesce(%s, ticket), updated_at = now()"
                 " WHERE problem_id = %s", (note, ticket, pid))
    return pid
