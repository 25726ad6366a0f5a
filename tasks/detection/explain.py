"""Explain a peak: which field values (pod, host, version, namespace) account for most of the excess.

Like Elastic's log rate analysis: the excess of each value over its historical share of the baseline.
"""

from __future__ import annotations

from collections import defaultdict
from datetime import datetime, timedelta

import psycopg

from tasks.counting.counts import DIMENSIONS


def load_dimensions(conn: psycopg.Connection, window_start: datetime, problems: list[str]):
    """This window's and the last week's field values per (problem, app) (windows stored by earlier versions
    also hold error_type values: not read)."""
    current: dict = defaultdict(lambda: defaultdict(int))
    past: dict = defaultdict(lambda: defaultdict(int))
    if not problems:
        return current, past
    for problem_id, app, dimensions in conn.execute(
            "SELECT problem_id, app, dimensions FROM window_dimensions WHERE window_start = %s AND problem_id = ANY(%s)",
            (window_start, problems)):
        for dim in DIMENSIONS:
            for value, n in (dimensions.get(dim) or {}).items():
                current[(problem_id, app)][(dim, value)] += n
    for problem_id, app, dim, value, n in conn.execute(
            "SELECT problem_id, app, dimension, value, sum(count)::int FROM window_dimension_rows"
            " WHERE window_start >= %s AND window_start < %s AND problem_id = ANY(%s) AND dimension = ANY(%s)"
            " GROUP BY problem_id, app, dimension, value",
            (window_start - timedelta(days=7), window_start, problems, list(DIMENSIONS))):
        past[(problem_id, app)][(dim, value)] += n
    return current, past


def explain(count: int, expected: float, current: dict, past: dict, top: int = 3) -> list[dict]:
    """Top field values by their share of the excess over the baseline."""
    excess_total = max(count - expected, 1.0)
    out = []
    for dim in DIMENSIONS:
        past_dim = {v: n for (d, v), n in past.items() if d == dim}
        past_total = sum(past_dim.values())
        for (d, value), n in current.items():
            if d != dim:
                continue
            share_hist = past_dim.get(value, 0) / past_total if past_total else 0.0
            excess = n - expected * share_hist
            if excess > 0:
                out.append({"field": dim, "value": value, "count": n,
                            "share": round(min(excess / excess_total, 1.0), 3)})
    out.sort(key=lambda e: (-e["share"], e["field"], e["value"]))
    # one line per field at most, the strongest first
    seen, best = set(), []
    for e in out:
        if e["field"] not in seen:
            seen.add(e["field"])
            best.append(e)
    return best[:top]


def describe(explanation: list[dict]) -> str:
    """'92% from pod payments-7f9 on version 1.4.2'."""
    if not explanation:
        return ""
    head = explanation[0]
    text = f"{head['share']:.0%} from {head['field']} {head['value']}"
    for e in explanation[1:]:
        if e["share"] >= 0.5:
            text += f" on {e['field']} {e['value']}"
    return text
