"""Prefect block: the PostgreSQL database (application user and DDL user/role)."""

from __future__ import annotations

from prefect.blocks.core import Block
from pydantic import Field, SecretStr


class AilogPostgres(Block):
    """PostgreSQL for AI Log Analyzer: the app user has data privileges only; the DDL user owns the schema."""

    _block_type_name = "AI Log Analyzer PostgreSQL"
    _block_type_slug = "ailog-postgres"

    host: str = Field(description="Host name, or a Unix-socket directory")
    port: int = 5432
    name: str = "ailog"
    user: str = "ailog"
    password: SecretStr | None = None
    ddl_user: str | None = None
    ddl_password: SecretStr | None = None
    ddl_role: str | None = None
