"""Replace one window's rows in one transaction: re-running a window never double-counts.

Callers hold the window's advisory lock (``lock_window``) for the whole transaction, so two runs of the
same window (a scheduled run and a manual re-run, two pods) cannot interleave.
"""

from __future__ import annotations

from hashlib import sha256

import psycopg
from orjson import OPT_SORT_KEYS, dumps

from tasks.counting.counts import WindowCounts
from tasks.models import SourceStats, Window
from tasks.store.copy_text import array_literal, clean, line, text, write_lines

WINDOW_TABLES = ("window_counts", "window_totals", "window_dimensions", "window_problem_samples")


def lock_window(conn: psycopg.Connection, window: Window) -> None:
    """Serialise work on one window across processes until the transaction ends."""
    conn.execute("SELECT pg_advisory_xact_lock(hashtext('ailog-window'), hashtext(%s))", (window.start.isoformat(),))


def replace_window_counts(conn: psycopg.Connection, counts: WindowCounts, stats: SourceStats,
                          run_id: str | None = None) -> set[str]:
    """Delete the window's rows and write the new ones with COPY, in the caller's transaction. Returns the
    problems the window held before: a re-run that no longer has one must still refresh its registry row."""
    start = counts.window.start
    # the running totals (migration 0011) of every problem this window had or has, locked at once in key order:
    # windows stored in parallel (fanned-out days) then wait for each other instead of deadlocking
    conn.execute("SELECT 1 FROM problem_totals WHERE problem_id IN (SELECT problem_id FROM window_problem_samples"
                 " WHERE window_start = %s UNION SELECT unnest(%s::text[])) ORDER BY problem_id FOR UPDATE",
                 (start, array_literal(sorted(counts.samples))))
    for table in WINDOW_TABLES[:-1]:
        conn.execute(f"DELETE FROM {table} WHERE window_start = %s", (start,))  # noqa: S608 - fixed table names
    before = {r[0] for r in conn.execute(
        "DELETE FROM window_problem_samples WHERE window_start = %s RETURNING problem_id", (start,))}
    stamp = start.isoformat()
    # every (window, problem, app) prefix and minute formatted once, not once per row
    dimensions = dimensions_per_app(counts.dimensions)
    heads = {pair: f"{stamp}\t{text(pair[0])}\t{text(pair[1])}\t"
             for pair in {(p, a) for p, a, _ in counts.minutes} | dimensions.keys()}
    clock = {m: m.isoformat() for m in {m for _, _, m in counts.minutes}}
    minute_lines = [f"{heads[(p, a)]}{clock[m]}\t{n}\n" for (p, a, m), n in sorted(counts.minutes.items())]
    with conn.cursor() as cur:
        with cur.copy("COPY window_counts (window_start, problem_id, app, minute, count) FROM STDIN") as cp:
            write_lines(cp, minute_lines)
        with cur.copy("COPY window_totals (window_start, problem_id, app, count) FROM STDIN") as cp:
            write_lines(cp, [f"{heads[pair]}{n}\n" for pair, n in sorted(counts.per_problem_app().items())])
        with cur.copy("COPY window_dimensions (window_start, problem_id, app, dimensions) FROM STDIN") as cp:
            write_lines(cp, [f"{heads[pair]}{text(dumps(values, option=OPT_SORT_KEYS).decode())}\n"
                             for pair, values in sorted(dimensions.items())])
        totals, apps = counts.per_problem(), counts.apps_per_problem()
        with cur.copy("COPY window_problem_samples (window_start, problem_id, first_ts, last_ts, sample_message,"
                      " sample_trace_id, error_type, count, apps, template) FROM STDIN") as cp:
            write_lines(cp, (line((stamp, problem_id, s.first_ts, s.last_ts, s.sample_message, s.sample_trace_id,
                                   s.error_type, totals[problem_id], sorted(apps[problem_id]),
                                   counts.templates.get(problem_id)))
                              for problem_id, s in sorted(counts.samples.items())))
    conn.execute(
        "INSERT INTO windows (window_start, window_end, events_read, bad_documents, problems, data_hash, run_id,"
        " processed_at) VALUES (%s, %s, %s, %s, %s, %s, %s, now())"
        " ON CONFLICT (window_start) DO UPDATE SET window_end = EXCLUDED.window_end,"
        " events_read = EXCLUDED.events_read, bad_documents = EXCLUDED.bad_documents, problems = EXCLUDED.problems,"
        " data_hash = EXCLUDED.data_hash, run_id = EXCLUDED.run_id, processed_at = now()",
        (start, counts.window.end, stats.events_read, dumps(dict(stats.bad_documents)).decode(),
         len(counts.samples), sha256("".join(minute_lines).encode()).hexdigest(), run_id),  # what changed on a re-run
    )
    return before


def dimensions_per_app(dimensions: dict[tuple[str, str, str, str], int]) -> dict[tuple[str, str], dict]:
    """``(problem, app, dimension, value) -> n`` as one object per (problem, app), ``{dimension: {value: n}}``:
    the row a window stores for them (migration 0012). Values are cleaned as text columns are (no NUL)."""
    out: dict[tuple[str, str], dict[str, dict[str, int]]] = {}
    for (problem_id, app, dimension, value), n in dimensions.items():
        values = out.setdefault((problem_id, app), {}).setdefault(dimension, {})
        value = clean(value)
        values[value] = values.get(value, 0) + n
    return out


def stored_problems(conn: psycopg.Connection, window: Window) -> dict[str, str | None]:
    """The problems of a stored window with the template they were grouped under (what judging it needs)."""
    return dict(conn.execute("SELECT problem_id, template FROM window_problem_samples WHERE window_start = %s",
                             (window.start,)).fetchall())


def processed_windows(conn: psycopg.Connection, window: Window) -> list:
    """Starts of the stored windows inside ``window`` (e.g. a day), oldest first."""
    rows = conn.execute("SELECT window_start FROM windows WHERE window_start >= %s AND window_start < %s"
                        " ORDER BY window_start", (window.start, window.end)).fetchall()
    return [r[0] for r in rows]
