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
from tasks.store.copy_text import NULL, array_literal, array_of, clean, optional, text, write_lines

# every row a window writes (migration 0014: its per-minute counts and field values are columns of window_totals)
WINDOW_TABLES = ("window_totals", "window_problem_samples")


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
    rendered = counts.rendered_dimensions if counts.rendered_dimensions is not None else render_dimensions(counts)
    # one row per (problem, app): its total, its minutes as an integer[] and its field values as one object
    app_lines = [f"{stamp}\t{text(p)}\t{text(a)}\t{sum(slots)}\t{{{','.join(map(str, slots))}}}\t"
                 f"{rendered.get((p, a), NULL)}\n"
                 for (p, a), slots in sorted(counts.minutes.items())]
    with conn.cursor() as cur:
        with cur.copy("COPY window_totals (window_start, problem_id, app, count, minutes, dimensions) FROM STDIN") as cp:
            write_lines(cp, app_lines)
        totals, apps = counts.per_problem(), counts.apps_per_problem()
        with cur.copy("COPY window_problem_samples (window_start, problem_id, first_ts, last_ts, sample_message,"
                      " sample_trace_id, error_type, count, apps, template) FROM STDIN") as cp:
            write_lines(cp, (f"{stamp}\t{text(clean(problem_id))}\t{s.first_ts.isoformat()}\t{s.last_ts.isoformat()}\t"
                             f"{optional(s.sample_message)}\t{optional(s.sample_trace_id)}\t{optional(s.error_type)}\t"
                             f"{totals[problem_id]}\t{array_of(tuple(sorted(apps[problem_id])))}\t"
                             f"{optional(counts.templates.get(problem_id))}\n"
                             for problem_id, s in sorted(counts.samples.items())))
    conn.execute(
        "INSERT INTO windows (window_start, window_end, events_read, bad_documents, problems, data_hash, run_id,"
        " processed_at) VALUES (%s, %s, %s, %s, %s, %s, %s, now())"
        " ON CONFLICT (window_start) DO UPDATE SET window_end = EXCLUDED.window_end,"
        " events_read = EXCLUDED.events_read, bad_documents = EXCLUDED.bad_documents, problems = EXCLUDED.problems,"
        " data_hash = EXCLUDED.data_hash, run_id = EXCLUDED.run_id, processed_at = now()",
        (start, counts.window.end, stats.events_read, dumps(dict(stats.bad_documents)).decode(),
         len(counts.samples), sha256("".join(app_lines).encode()).hexdigest(), run_id),  # what changed on a re-run
    )
    return before


def render_dimensions(counts: WindowCounts) -> dict[tuple[str, str], str]:
    """Each (problem, app)'s field values as the text COPY sends (`dimensions_text`)."""
    return {key: dimensions_text(values) for key, values in counts.dimensions.items()}


def render_for_store(counts: WindowCounts) -> None:
    """Render the field values now, in place of the dicts: where the counting ran (the grouping process), so the
    storing process receives and writes text (`WindowCounts.rendered_dimensions`)."""
    counts.rendered_dimensions = render_dimensions(counts)
    counts.dimensions = {}


def dimensions_text(values: dict[str, dict[str, int]]) -> str:
    """A (problem, app)'s field values as the jsonb text COPY sends: keys sorted, and a value holding a NUL
    (PostgreSQL text cannot) with it replaced, its count added to a value it then equals."""
    data = dumps(values, option=OPT_SORT_KEYS)
    if b"\\u0000" in data:
        cleaned: dict[str, dict[str, int]] = {}
        for dimension, counted in values.items():
            into = cleaned.setdefault(dimension, {})
            for value, n in counted.items():
                value = clean(value)
                into[value] = into.get(value, 0) + n
        data = dumps(cleaned, option=OPT_SORT_KEYS)
    return text(data.decode())


def stored_problems(conn: psycopg.Connection, window: Window) -> dict[str, str | None]:
    """The problems of a stored window with the template they were grouped under (what judging it needs)."""
    return dict(conn.execute("SELECT problem_id, template FROM window_problem_samples WHERE window_start = %s",
                             (window.start,)).fetchall())


def processed_windows(conn: psycopg.Connection, window: Window) -> list:
    """Starts of the stored windows inside ``window`` (e.g. a day), oldest first."""
    rows = conn.execute("SELECT window_start FROM windows WHERE window_start >= %s AND window_start < %s"
                        " ORDER BY window_start", (window.start, window.end)).fetchall()
    return [r[0] for r in rows]
