"""PostgreSQL access: connections as the application or the DDL user, and schema migrations."""

from core.db.connection import Database, open_database

__all__ = ["Database", "open_database"]
