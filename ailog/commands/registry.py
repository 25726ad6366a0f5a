"""`ailog registry export FILE | import FILE`: YAML backup and restore of the registries."""

from __future__ import annotations

from blocks.settings import load_settings
from core.db import open_database
from core.db.migrate import require_migrated
from tasks.registries.backup import read_backup, write_backup


def run(args) -> int:
    db = open_database(load_settings())
    require_migrated(db)
    with db.connect() as conn:
        if args.registry_command == "export":
            counts = write_backup(conn, args.file)
            verb = "exported"
        else:
            counts = read_backup(conn, args.file)
            conn.commit()
            verb = "imported"
    print(f"{verb} " + ", ".join(f"{n} {t}" for t, n in counts.items()) + f" ({args.file})")
    return 0
