"""Folding merged problems: once a problem id has become an alias, its stored rows move to the surviving id.

A merge (word variables, trace shapes) happens online, after earlier windows — or earlier events of the same
window — were already counted under the old id. Left there, the old rows make the registry count those events
twice once a re-run counts them under the survivor, and make reports depend on the order in which windows
were analysed. Folding moves every per-window row (totals with their minutes and field values, samples,
peaks) and the registry row (people's edits kept, pruned counts added) to the survivor, in the window's
transaction, so the stored state is what it would have been had the merge been known from the start.
"""

from __future__ import annotations

import psycopg

_MAPPING = "WITH m(alias_id, target) AS (SELECT * FROM unnest(%(a)s::text[], %(t)s::text[]))"
# table: (key columns besides problem_id, {column: (how two values add up, the aggregate over many)})
_MERGED = {
    # each (window, app)'s total, minutes (migration 0014) and field values (0012)
    "window_totals": ("window_start, app", {"count": ("{0} + {1}", "sum"),
                                            "minutes": ("add_minutes({0}, {1})", "sum_minutes"),
                                            "dimensions": ("add_dimensions({0}, {1})", "sum_dimensions")}),
}
_EDITS = ("title", "note", "ticket", "muted_by", "muted_reason", "muted_at", "acknowledged_by", "acknowledged_at")


def pending_aliases(conn: psycopg.Connection) -> dict[str, str]:
    """Aliases that still own stored rows, each mapped to the id it finally resolves to."""
    aliases = dict(conn.execute("SELECT alias_id, problem_id FROM problem_aliases").fetchall())
    if not aliases:
        return {}
    owning = [r[0] for r in conn.execute(
        "SELECT alias_id FROM problem_aliases a WHERE EXISTS (SELECT 1 FROM window_problem_samples s"
        " WHERE s.problem_id = a.alias_id) OR EXISTS (SELECT 1 FROM problems p WHERE p.problem_id = a.alias_id)"
        " OR EXISTS (SELECT 1 FROM window_totals c WHERE c.problem_id = a.alias_id)")]
    return {alias: _resolve(aliases, alias) for alias in sorted(owning)}


def fold_aliases(conn: psycopg.Connection) -> set[str]:
    """Move the rows of every alias that still owns some to its survivor; returns the survivors touched."""
    mapping = {a: t for a, t in pending_aliases(conn).items() if a != t}
    if not mapping:
        return set()
    params = {"a": list(mapping), "t": [mapping[a] for a in mapping]}
    for table, (keys, columns) in _MERGED.items():
        names = ", ".join(columns)
        merged = ", ".join(f"{aggregate}(x.{c})" for c, (_, aggregate) in columns.items())
        updates = ", ".join(f"{c} = " + add.format(f"{table}.{c}", f"EXCLUDED.{c}") for c, (add, _) in columns.items())
        conn.execute(
            f"{_MAPPING} INSERT INTO {table} (problem_id, {keys}, {names})"  # noqa: S608
            f" SELECT m.target, {_qualified(keys)}, {merged} FROM {table} x"
            f" JOIN m ON x.problem_id = m.alias_id GROUP BY m.target, {_qualified(keys)}"
            f" ON CONFLICT (problem_id, {keys}) DO UPDATE SET {updates}", params)
        conn.execute(f"DELETE FROM {table} WHERE problem_id = ANY(%(a)s)", params)  # noqa: S608
    conn.execute(
        f"{_MAPPING} INSERT INTO window_problem_samples (window_start, problem_id, first_ts, last_ts, sample_message,"  # noqa: S608
        " sample_trace_id, error_type, count, apps)"
        " SELECT x.window_start, m.target, min(x.first_ts), max(x.last_ts),"
        " (array_agg(x.sample_message ORDER BY x.first_ts, x.sample_message))[1],"
        " (array_agg(x.sample_trace_id ORDER BY x.first_ts, x.sample_message))[1],"
        " (array_agg(x.error_type ORDER BY x.first_ts, x.sample_message))[1], sum(x.count),"
        " ARRAY(SELECT DISTINCT a FROM unnest(string_to_array(string_agg(array_to_string(x.apps, chr(31)), chr(31)),"
        " chr(31))) a WHERE a <> '' ORDER BY a)"
        " FROM window_problem_samples x JOIN m ON x.problem_id = m.alias_id GROUP BY x.window_start, m.target"
        " ON CONFLICT (window_start, problem_id) DO UPDATE SET"
        " sample_message = CASE WHEN (EXCLUDED.first_ts, EXCLUDED.sample_message) < (window_problem_samples.first_ts,"
        " window_problem_samples.sample_message) THEN EXCLUDED.sample_message ELSE window_problem_samples.sample_message END,"
        " sample_trace_id = CASE WHEN (EXCLUDED.first_ts, EXCLUDED.sample_message) < (window_problem_samples.first_ts,"
        " window_problem_samples.sample_message) THEN EXCLUDED.sample_trace_id ELSE window_problem_samples.sample_trace_id END,"
        " first_ts = LEAST(window_problem_samples.first_ts, EXCLUDED.first_ts),"
        " last_ts = GREATEST(window_problem_samples.last_ts, EXCLUDED.last_ts),"
        " error_type = coalesce(window_problem_samples.error_type, EXCLUDED.error_type),"
        " count = window_problem_samples.count + EXCLUDED.count,"
        " apps = ARRAY(SELECT DISTINCT a FROM unnest(window_problem_samples.apps || EXCLUDED.apps) a ORDER BY a)", params)
    conn.execute("DELETE FROM window_problem_samples WHERE problem_id = ANY(%(a)s)", params)
    conn.execute(f"{_MAPPING} UPDATE peaks SET problem_id = m.target FROM m"  # noqa: S608
                 " WHERE peaks.problem_id = m.alias_id", params)
    _fold_registry_rows(conn, mapping)
    return set(mapping.values())


def _fold_registry_rows(conn: psycopg.Connection, mapping: dict[str, str]) -> None:
    """The alias's registry row: its pruned count and people's edits go to the survivor, then it goes."""
    columns = ", ".join(("count_pruned", "muted", *_EDITS))
    rows = conn.execute(f"SELECT problem_id, {columns} FROM problems WHERE problem_id = ANY(%s)"  # noqa: S608
                        " ORDER BY problem_id", (list(mapping),)).fetchall()
    for alias, pruned, muted, *edits in rows:
        target = mapping[alias]
        if conn.execute("SELECT 1 FROM problems WHERE problem_id = %s", (target,)).fetchone() is None:
            conn.execute("UPDATE problems SET problem_id = %s WHERE problem_id = %s", (target, alias))
            continue
        sets = ", ".join(f"{c} = coalesce(problems.{c}, %s)" for c in _EDITS)
        conn.execute(f"UPDATE problems SET count_pruned = count_pruned + %s, muted = muted OR %s, {sets}"  # noqa: S608
                     " WHERE problem_id = %s", (pruned, muted, *edits, target))
        conn.execute("DELETE FROM problems WHERE problem_id = %s", (alias,))


def _qualified(keys: str) -> str:
    return ", ".join(f"x.{k.strip()}" for k in keys.split(","))


def _resolve(aliases: dict[str, str], problem_id: str) -> str:
    seen = set()
    while problem_id in aliases and problem_id not in seen:
        seen.add(problem_id)
        problem_id = aliases[problem_id]
    return problem_id
