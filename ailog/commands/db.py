"""`ailog db migrate|status|stop`."""

from __future__ import annotations

from blocks.settings import load_settings
from core.db import open_database
from core.db.embedded import stop_embedded
from core.db.migrate import available_migrations, migrate, schema_version


def run(args) -> int:
    settings = load_settings()
    if args.db_command == "stop":
        stopped = stop_embedded(settings.home)
        print("embedded PostgreSQL stopped" if stopped else f"no embedded PostgreSQL running under {settings.home}")
        return 0
    db = open_database(settings)
    if args.db_command == "migrate":
        print(migrate(db).describe())
        return 0
    where = f"embedded server under {settings.home / 'pgdata'}" if db.is_embedded else f"{db.settings.host}:{db.settings.port}"
    current = schema_version(db)
    latest = available_migrations()[-1].version
    print(f"database {db.settings.name} at {where}; schema version {current or 'none'} (this release: {latest})")
    return 0 if current == latest else 1
