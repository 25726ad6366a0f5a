"""Prefect block: the Microsoft Teams webhook."""

from __future__ import annotations

from prefect.blocks.core import Block
from pydantic import Field, SecretStr


class AilogTeams(Block):
    """Teams webhook (legacy connector or Workflows URL). The whole URL is a secret (it carries the signature)."""

    _block_type_name = "AI Log Analyzer Teams"
    _block_type_slug = "ailog-teams"

    webhook_url: SecretStr
    enabled: bool = True
    kind: str = Field(default="auto", description="auto | legacy | workflow")
