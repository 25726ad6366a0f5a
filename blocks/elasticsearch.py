"""Prefect block: where the logs come from (Elasticsearch)."""

from __future__ import annotations

from prefect.blocks.core import Block
from pydantic import Field, SecretStr


class AilogElasticsearch(Block):
    """Elasticsearch connection and query settings for AI Log Analyzer."""

    _block_type_name = "AI Log Analyzer Elasticsearch"
    _block_type_slug = "ailog-elasticsearch"

    url: str = Field(description="Full URL, e.g. https://es.example:9200")
    index: str = Field(default="logs-*", description="Index pattern")
    username: str | None = None
    password: SecretStr | None = None
    api_key: SecretStr | None = None
    ca_certs: str | None = Field(default=None, description="Path to a CA bundle inside the container")
    verify_certs: bool = True
    query_filter: dict | None = Field(default=None, description="Extra bool filter clause, e.g. log.level ERROR")
    page_size: int = 5000
    slices: int = 1
