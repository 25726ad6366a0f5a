"""Prefect block: Confluence (Server/Data Center) and the three pages."""

from __future__ import annotations

from prefect.blocks.core import Block
from pydantic import SecretStr


class AilogConfluence(Block):
    """Confluence service account (password or personal access token) and the page ids to publish to."""

    _block_type_name = "AI Log Analyzer Confluence"
    _block_type_slug = "ailog-confluence"

    url: str
    username: str | None = None
    password: SecretStr | None = None
    token: SecretStr | None = None
    daily_report_page_id: str | None = None
    known_errors_page_id: str | None = None
    known_peaks_page_id: str | None = None
    minor_edit: bool = True
