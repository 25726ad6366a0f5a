"""`ailog problem mute|unmute|acknowledge|rename|annotate|list`: people's edits, which every later run keeps."""

from __future__ import annotations

from blocks.settings import load_settings
from core.db import open_database
from core.db.migrate import require_migrated
from tasks.registries import known_errors


def run(args) -> int:
    db = open_database(load_settings())
    require_migrated(db)
    with db.connect() as conn:
        action = args.problem_command
        if action == "list":
            rows = conn.execute("SELECT problem_id, status, count_total, muted, coalesce(title, template) FROM problems"
                                " ORDER BY count_total DESC, problem_id").fetchall()
            for pid, status, total, muted, text in rows:
                print(f"{pid}\t{status}\t{total}\t{'muted' if muted else ''}\t{text[:100]}")
            return 0
        if action == "mute":
            pid = known_errors.mute(conn, args.problem_id, args.by, args.reason)
        elif action == "unmute":
            pid = known_errors.unmute(conn, args.problem_id)
        elif action == "acknowledge":
            pid = known_errors.acknowledge(conn, args.problem_id, args.by, args.reason)
        elif action == "rename":
            pid = known_errors.rename(conn, args.problem_id, args.title)
        else:
            pid = known_errors.annotate(conn, args.problem_id, note=args.note, ticket=args.ticket)
        conn.commit()
    print(f"{action}: {pid}")
    return 0
