"""Retention: per-window counts, peaks and runs older than the configured age are pruned; registries are kept,
and each problem's pruned events are added to `count_pruned` first so `count_total` does not shrink."""

from __future__ import annotations

from datetime import datetime

import psycopg


def prune(conn: psycopg.Connection, older_than: datetime) -> dict[str, int]:
    """Idempotent per window: a window pruned before (then re-backfilled) is not added to the totals again."""
    conn.execute(
        "UPDATE problems p SET count_pruned = p.count_pruned + s.n FROM"
        " (SELECT problem_id, sum(count)::bigint AS n FROM window_problem_samples w WHERE window_start < %s"
        "  AND NOT EXISTS (SELECT 1 FROM pruned_windows pw WHERE pw.window_start = w.window_start)"
        "  GROUP BY problem_id) s WHERE p.problem_id = s.problem_id", (older_than,))
    conn.execute("INSERT INTO pruned_windows (window_start) SELECT DISTINCT window_start FROM window_problem_samples"
                 " WHERE window_start < %s ON CONFLICT DO NOTHING", (older_than,))
    removed = {}
    for table, column in (("window_totals", "window_start"), ("window_problem_samples", "window_start"),
                          ("windows", "window_start"), ("peaks", "window_start"), ("runs", "started_at")):
        removed[table] = conn.execute(f"DELETE FROM {table} WHERE {column} < %s", (older_than,)).rowcount  # noqa: S608
    removed["outbox"] = conn.execute("DELETE FROM outbox WHERE status = 'sent' AND sent_at < %s", (older_than,)).rowcount
    # a pruned window re-analysed since (a re-backfill) counted twice in count_total until now: recompute it
    conn.execute(
        "UPDATE problems p SET count_total = p.count_pruned + coalesce(s.n, 0) FROM problems q LEFT JOIN"
        " (SELECT problem_id, sum(count)::bigint AS n FROM window_problem_samples GROUP BY problem_id) s"
        " ON s.problem_id = q.problem_id WHERE q.problem_id = p.problem_id"
        " AND p.count_total <> p.count_pruned + coalesce(s.n, 0)")
    return removed
