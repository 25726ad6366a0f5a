"""Block documents ↔ settings: register the types, create documents from env vars, read them back.

Document names default to ``ailog-postgres``, ``ailog-elasticsearch``, ``ailog-teams``, ``ailog-confluence``, ``ailog-reports``
(override with ``AILOG_BLOCK_<SECTION>``, e.g. ``AILOG_BLOCK_TEAMS=teams-prod``).
"""

from __future__ import annotations

import os
from dataclasses import fields, replace
from typing import Any

from blocks.confluence import AilogConfluence
from blocks.elasticsearch import AilogElasticsearch
from blocks.postgres import AilogPostgres
from blocks.reports import AilogReports
from blocks.settings import (
    ConfluenceSettings,
    DatabaseSettings,
    ElasticsearchSettings,
    ReportsSettings,
    TeamsSettings,
    confluence_from_env,
    database_from_env,
    elasticsearch_from_env,
    reports_from_env,
    teams_from_env,
)
from blocks.teams import AilogTeams
from core.errors import ConfigError

SECTIONS: dict[str, tuple[type, type]] = {
    "database": (AilogPostgres, DatabaseSettings),
    "elasticsearch": (AilogElasticsearch, ElasticsearchSettings),
    "teams": (AilogTeams, TeamsSettings),
    "confluence": (AilogConfluence, ConfluenceSettings),
    "reports": (AilogReports, ReportsSettings),
}
DEFAULT_NAMES = {"database": "ailog-postgres", "elasticsearch": "ailog-elasticsearch",
                 "teams": "ailog-teams", "confluence": "ailog-confluence", "reports": "ailog-reports"}


def document_name(section: str, env: dict[str, str] | None = None) -> str:
    env = os.environ if env is None else env
    return env.get(f"AILOG_BLOCK_{section.upper()}") or DEFAULT_NAMES[section]


def register_block_types() -> list[str]:
    """Register the block types with the configured Prefect API (idempotent)."""
    for block_cls, _ in SECTIONS.values():
        block_cls.register_type_and_schema()
    return [b._block_type_slug for b, _ in SECTIONS.values()]


def _block_values(section: str, settings: Any) -> dict | None:
    """The fields of a settings section that its block stores; None when the section is not configured."""
    block_cls, _ = SECTIONS[section]
    if section == "database" and not settings.host:
        return None
    if section == "elasticsearch" and not settings.url:
        return None
    if section == "teams" and settings.webhook_url is None:
        return None
    if section == "confluence" and not settings.url:
        return None
    if section == "reports" and settings == ReportsSettings():
        return None
    names = set(block_cls.model_fields)
    values = {f.name: getattr(settings, f.name) for f in fields(settings) if f.name in names}
    return {k: v for k, v in values.items() if v is not None}


def blocks_from_env(env: dict[str, str] | None = None, *, sections: tuple[str, ...] | None = None) -> dict[str, str]:
    """Create or update one block document per configured section from the environment variables."""
    env = dict(os.environ if env is None else env)
    readers = {"database": database_from_env, "elasticsearch": elasticsearch_from_env, "teams": teams_from_env,
               "confluence": confluence_from_env, "reports": reports_from_env}
    result = {}
    for section in sections or tuple(readers):
        settings = readers[section](env)
        values = _block_values(section, settings)
        name = document_name(section, env)
        if values is None:
            result[section] = "not configured in the environment; skipped"
            continue
        block_cls, _ = SECTIONS[section]
        block_cls(**values).save(name, overwrite=True)
        result[section] = f"saved block document {block_cls._block_type_slug}/{name}"
    return result


def settings_from_blocks(env: dict[str, str]) -> dict[str, tuple[Any, str]]:
    """Settings sections found as block documents (missing documents are simply absent)."""
    from prefect.exceptions import ObjectNotFound

    found: dict[str, tuple[Any, str]] = {}
    for section, (block_cls, settings_cls) in SECTIONS.items():
        name = document_name(section, env)
        try:
            block = block_cls.load(name)
        except (ValueError, ObjectNotFound):
            continue
        except Exception as exc:  # the API is configured but unreachable: say which setting
            raise ConfigError(
                f"cannot read Prefect block {block_cls._block_type_slug}/{name} ({type(exc).__name__}); "
                "check PREFECT_API_URL, or set AILOG_USE_BLOCKS=false to use environment variables"
            ) from None
        values = {k: getattr(block, k) for k in block_cls.model_fields if k in {f.name for f in fields(settings_cls)}}
        base = settings_cls()
        found[section] = (replace(base, **values), f"block:{name}")
    return found
