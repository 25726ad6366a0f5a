"""Backup and restore of the registries (the user's "registry backup"): YAML, lossless, importing twice is harmless.

Exported: problems with people's edits, problem aliases, the grouping template store (so ids stay stable after a
restore), known peaks. Counts and peaks are history, not registry: they are rebuilt by a backfill.
"""

from __future__ import annotations

from datetime import datetime
from pathlib import Path

import psycopg
import yaml

from core.errors import AilogError
from core.yaml_file import read_yaml

FORMAT = "ailog-registries/1"
TABLES = {
    "problems": ("problem_id", ["problem_id", "template", "error_type", "apps", "first_seen", "last_seen",
                                "count_total", "count_pruned", "status", "severity", "sample_message", "sample_trace_id",
                                "title", "note", "ticket", "muted", "muted_by", "muted_reason", "muted_at",
                                "acknowledged_by", "acknowledged_at", "merged_into"]),
    "problem_aliases": ("alias_id", ["alias_id", "problem_id"]),
    "grouping_templates": ("template_key", ["template_key", "problem_id", "template", "token_count"]),
    "known_peaks": ("known_peak_id", ["known_peak_id", "problem_id", "app", "minute_of_day", "weekday", "tolerance_min",
                                      "typical_count", "max_count", "times_seen", "first_seen", "last_seen", "source",
                                      "note"]),
}
TIMESTAMPS = {"first_seen", "last_seen", "muted_at", "acknowledged_at"}


def _plain(value):
    if isinstance(value, datetime):
        return value.isoformat().replace("+00:00", "Z")
    return value


def export_registries(conn: psycopg.Connection) -> dict:
    data: dict = {"format": FORMAT}
    for table, (key, columns) in TABLES.items():
        rows = conn.execute(f"SELECT {', '.join(columns)} FROM {table} ORDER BY {key}").fetchall()  # noqa: S608
        data[table] = [{c: _plain(v) for c, v in zip(columns, row, strict=True)} for row in rows]
    return data


def dump_yaml(data: dict) -> str:
    return yaml.safe_dump(data, sort_keys=False, allow_unicode=True, width=120)


def import_registries(conn: psycopg.Connection, data: object, origin: str = "backup") -> dict[str, int]:
    """Upsert every row (the backup wins for the fields it carries); returns rows per table."""
    if not isinstance(data, dict) or data.get("format") != FORMAT:
        raise AilogError(f"{origin} is not an ailog registry backup (expected `format: {FORMAT}`)")
    counts = {}
    for table, (key, columns) in TABLES.items():
        rows = data.get(table) or []
        if not isinstance(rows, list):
            raise AilogError(f"{origin}: `{table}` must be a list")
        values = []
        for i, row in enumerate(rows, 1):
            if not isinstance(row, dict) or key not in row:
                raise AilogError(f"{origin}: {table} entry {i} has no `{key}`")
            unknown = set(row) - set(columns)
            if unknown:
                raise AilogError(f"{origin}: {table} entry {i} has unknown field(s) {', '.join(sorted(unknown))}")
            values.append([row.get(c) for c in columns])
        if values:
            updates = ", ".join(f"{c} = EXCLUDED.{c}" for c in columns if c != key)
            conn.cursor().executemany(
                f"INSERT INTO {table} ({', '.join(columns)}) VALUES ({', '.join(['%s'] * len(columns))})"  # noqa: S608
                f" ON CONFLICT ({key}) DO UPDATE SET {updates}", values)
        counts[table] = len(values)
    return counts


def write_backup(conn: psycopg.Connection, path: Path | str) -> dict[str, int]:
    data = export_registries(conn)
    Path(path).write_text(dump_yaml(data))
    return {t: len(data[t]) for t in TABLES}


def read_backup(conn: psycopg.Connection, path: Path | str) -> dict[str, int]:
    return import_registries(conn, read_yaml(path, "registry backup", AilogError), str(path))
