"""The database's own connection parameters (read from the environment or a block by blocks/settings.py)."""

from __future__ import annotations

from dataclasses import dataclass

from pydantic import SecretStr


@dataclass(frozen=True)
class DatabaseSettings:
    """PostgreSQL: the application user (data only) and the DDL user/role that owns the schema.

    ``host`` None means: no database configured → the embedded server under AILOG_HOME.
    """

    host: str | None = None
    port: int = 5432
    name: str = "ailog"
    user: str = "ailog"
    password: SecretStr | None = None
    ddl_user: str | None = None
    ddl_password: SecretStr | None = None
    ddl_role: str | None = None
    connect_timeout: int = 10
    statement_timeout_ms: int = 300_000

    @property
    def embedded(self) -> bool:
        return not self.host
